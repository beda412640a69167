"""`retain ui` over HTTP: a real server process on loopback, its JSON endpoints, and its
security (loopback by default, a token beyond it, no path out of a result, no writes).

The browser tests are in test_ui_browser.py.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import id_directories
from ui_server import Server, serving, start_slow, wait_for

from retain._errors import UnsafePathError
from retain.ui._data import safe_name


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with serving(tmp_path_factory.mktemp("ui")) as found:
        yield found


def storage_files(storage: Path) -> dict[str, tuple[int, int]]:
    """Every file of the storage but the index (a cache the queries keep up to date), with
    its size and modification time."""
    out = {}
    for directory, _, names in os.walk(storage):
        for name in names:
            path = os.path.join(directory, name)
            relative = os.path.relpath(path, storage)
            if relative.startswith(os.path.join(".retain", "index")):
                continue
            info = os.stat(path)
            out[relative] = (info.st_size, info.st_mtime_ns)
    return out


def test_listens_on_loopback_by_default_and_prints_the_url(world: dict[str, Any]) -> None:
    server = world["server"]
    assert server.url.startswith("http://127.0.0.1:") and "token" not in server.url
    assert str(world["root"] / "storage") in server.first_lines[0]
    code, headers, body = server.get("/")
    assert code == 200 and b"/static/app.js" in body
    code, headers, body = server.get("/static/plotly.min.js")
    assert code == 200 and len(body) > 1_000_000 and b"plotly" in body[:2000].lower()


def test_overview_counts_each_class_by_state(world: dict[str, Any]) -> None:
    data = world["server"].json("/api/classes")
    classes = {c["class"]: c for c in data["classes"]}
    assert classes["uiproject:Train"]["count"] == 4
    assert classes["uiproject:Train"]["states"] == {"finished": 3, "failed": 1}
    assert classes["uiproject:Point"]["count"] == 150
    assert classes["uiproject:Data"]["states"] == {"committed": 1}
    # Newest activity first: the points were committed last.
    assert data["classes"][0]["class"] == "uiproject:Point"


def test_table_pages_sorts_and_filters_with_the_where_grammar(world: dict[str, Any]) -> None:
    server = world["server"]
    first = server.json("/api/classes/uiproject:Point/rows?limit=100")
    assert first["total"] == 150 and len(first["rows"]) == 100
    assert first["columns"][:4] == ["id", "state", "created", "duration"]
    assert {"config.x", "config.group", "summary.y", "summary.label"} <= set(first["columns"])
    assert first["rows"][0]["config.x"] == 149  # newest first
    rest = server.json("/api/classes/uiproject:Point/rows?limit=100&offset=100")
    assert len(rest["rows"]) == 50
    assert {r["id"] for r in first["rows"]} | {r["id"] for r in rest["rows"]} == set(world["points"])
    ascending = server.json("/api/classes/uiproject:Point/rows?sort=x&limit=5")
    assert [r["config.x"] for r in ascending["rows"]] == [0, 1, 2, 3, 4]
    descending = server.json("/api/classes/uiproject:Point/rows?sort=-summary.y&limit=2")
    assert [r["summary.y"] for r in descending["rows"]] == [75.0**2, 74.0**2]
    narrowed = server.json("/api/classes/uiproject:Point/rows?" + "filter=" + _q("x<10 group=1"))
    assert narrowed["total"] == 3 and sorted(r["config.x"] for r in narrowed["rows"]) == [1, 4, 7]
    ranged = server.json("/api/classes/uiproject:Point/rows?where=x>=10&where=x<20&where=summary.y<=3600")
    assert sorted(r["config.x"] for r in ranged["rows"]) == [15, 16, 17, 18, 19]


def _q(text: str) -> str:
    from urllib.parse import quote

    return quote(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lrx<1", "unknown config key 'lrx'"),
        ("x<", "expected a value after '<'"),
        ("x!=3", "'!=' is not supported"),
        ("summary.z<1", "no committed Point has a summary value 'z'"),
        ("x='unclosed", "cannot read the filter"),
    ],
)
def test_bad_filters_are_errors_that_say_what_is_wrong(world: dict[str, Any], text: str, message: str) -> None:
    error = world["server"].json("/api/classes/uiproject:Point/rows?filter=" + _q(text), status=400)["error"]
    assert message in error


def test_table_rows_carry_state_duration_errors_and_input_links(world: dict[str, Any]) -> None:
    page = world["server"].json("/api/classes/uiproject:Train/rows?sort=lr")
    assert [r["config.lr"] for r in page["rows"]] == [0.1, 0.2, 0.3, 0.5]
    assert [r["state"] for r in page["rows"]] == ["finished"] * 3 + ["failed"]
    assert page["rows"][3]["error"] == "ValueError: boom"
    assert all(r["duration"] is not None and r["duration"] >= 0 for r in page["rows"])
    assert page["rows"][0]["config.data"] == world["data"]
    assert page["inputs"] == {world["data"]: "Data"}


def test_detail_shows_config_with_defaults_inputs_users_summary_files_provenance_command(world: dict[str, Any]) -> None:
    server = world["server"]
    id = world["trains"][1]
    data = server.json(f"/api/results/{id[:8]}")
    assert data["id"] == id and data["class"] == "uiproject:Train" and data["state"] == "finished"
    config = {item["key"]: item for item in data["config"]}
    assert config["lr"]["value"] == 0.2 and not config["lr"]["default"]
    assert config["depth"]["default"] and config["fail"]["default"]
    assert config["data"]["input"] == {"id": world["data"], "class": "Data"}
    assert data["inputs"] == [{"id": world["data"], "class": "uiproject:Data"}]
    assert data["summary"] == {"loss": pytest.approx(1 / (1 + 39 * 0.2)), "accuracy": pytest.approx(1 - 1 / (1 + 39 * 0.2))}
    names = {f["name"] for f in data["files"]}
    assert {"curve.npy", "weights.npy", "notes.txt", "params.json", "plot.png", "output.log"} <= names
    assert data["provenance"]["host"] and "git" in data["provenance"]
    assert [e["event"] for e in data["events"]] == ["started", "finished"]
    assert data["command"].startswith("retain uiproject:Train ") and "lr=0.2" in data["command"]
    users = server.json(f"/api/results/{world['data']}")["users"]
    assert {u["id"] for u in users} == set(world["trains"])


def test_file_previews(world: dict[str, Any]) -> None:
    server = world["server"]
    id = world["trains"][0]
    assert server.json(f"/api/results/{id}/preview/notes.txt") == {
        "name": "notes.txt", "kind": "text", "text": "notes of this run", "cut": False,
    }
    assert server.json(f"/api/results/{id}/preview/params.json")["value"] == {"lr": 0.1, "layers": [4, 4]}
    npy = server.json(f"/api/results/{id}/preview/weights.npy")
    assert npy["shape"] == [3, 4] and npy["dtype"] == "float64" and npy["first"][:3] == [0.0, 1.0, 2.0]
    assert server.json(f"/api/results/{id}/preview/plot.png")["kind"] == "image"
    code, headers, body = server.get(f"/api/results/{id}/files/plot.png")
    assert code == 200 and headers["content-type"] == "image/png" and body.startswith(b"\x89PNG")
    assert "sandbox" in headers["content-security-policy"] and headers["x-content-type-options"] == "nosniff"
    series = server.json(f"/api/results/{id}/series")
    assert series["files"]["curve.npy"][:2] == [1.0, pytest.approx(1 / 1.1)] and "weights.npy" not in series["files"]


@pytest.mark.parametrize(
    "name",
    ["..%2Finterface.json", "../../etc/passwd", "%2Fetc%2Fpasswd", "..", "a/../../b", "%2e%2e/x", "..%5Cx", "C:%5Cwindows"],
)
def test_paths_cannot_leave_the_result(world: dict[str, Any], name: str) -> None:
    server = world["server"]
    id = world["trains"][0]
    for route in ("files", "preview"):
        code, _, body = server.get(f"/api/results/{id}/{route}/{name}")
        assert code in (400, 404), (route, name, code, body[:200])
        assert b"root:" not in body


def test_a_file_is_served_only_through_its_result(world: dict[str, Any]) -> None:
    server = world["server"]
    # Another result's directory, named as if inside this one: not a file of this result.
    other = world["trains"][1]
    code, _, body = server.get(f"/api/results/{world['data']}/files/{other}%2Fnotes.txt")
    assert code == 404 and b"has no file" in body
    code, _, body = server.get(f"/api/results/{world['data']}/files/notes.txt")
    assert code == 404 and b"has no file 'notes.txt'" in body
    code, _, body = server.get("/api/results/zz/files/notes.txt")
    assert code == 404


@pytest.mark.parametrize("name", ["a/../b", "/abs", "..", "", "a//b", "./a", "a\\b", "C:x", "a\x00b"])
def test_safe_name_refuses_what_leaves_the_directory(name: str) -> None:
    with pytest.raises(UnsafePathError, match="not a relative path inside the result"):
        safe_name(name)


def test_output_is_read_from_an_offset(world: dict[str, Any]) -> None:
    server = world["server"]
    id = world["trains"][0]
    whole = server.json(f"/api/results/{id}/output")
    assert "training with lr=0.1" in whole["text"] and whole["state"] == "finished"
    assert whole["offset"] == len(whole["text"].encode())
    assert server.json(f"/api/results/{id}/output?offset={whole['offset']}")["text"] == ""
    assert server.json(f"/api/results/{id}/output?offset=5")["text"] == whole["text"][5:]


def test_compare_shows_only_the_config_keys_that_differ(world: dict[str, Any]) -> None:
    a, b = world["trains"][:2]
    data = world["server"].json(f"/api/compare?ids={a},{b[:10]}")
    assert [r["id"] for r in data["results"]] == [a, b]
    assert data["differing"] == ["lr"] and set(data["same"]) == {"depth", "data", "fail"}
    assert sorted(data["summary_names"]) == ["accuracy", "loss"]
    assert all("curve.npy" in r["series"]["files"] for r in data["results"])
    assert "compare needs ids" in world["server"].json("/api/compare", status=400)["error"]


def test_values_for_sweep_plots(world: dict[str, Any]) -> None:
    data = world["server"].json("/api/classes/uiproject:Point/values?keys=x,summary.y,config.group&filter=x<6")
    assert data["total"] == 6
    pairs = sorted(zip(data["columns"]["x"], data["columns"]["summary.y"], data["columns"]["config.group"]))
    assert pairs == [(x, float((x - 75) ** 2), x % 3) for x in range(6)]


def test_no_endpoint_writes_and_only_get_is_served(world: dict[str, Any]) -> None:
    server = world["server"]
    storage = world["root"] / "storage"
    before = storage_files(storage)
    id = world["trains"][0]
    for path in [
        "/", "/api/classes", "/api/classes/uiproject:Train/rows?sort=-lr", f"/api/results/{id}",
        f"/api/results/{id}/series", f"/api/results/{id}/output", f"/api/results/{id}/preview/weights.npy",
        f"/api/results/{id}/files/notes.txt", f"/api/compare?ids={id},{world['trains'][1]}", "/api/live",
        "/api/classes/uiproject:Point/values?keys=x",
    ]:
        assert server.get(path)[0] == 200, path
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            assert server.get(path, method=method)[0] == 405, (method, path)
    time.sleep(0.05)
    assert storage_files(storage) == before


def test_requests_naming_another_host_are_refused_on_loopback(world: dict[str, Any]) -> None:
    # A page elsewhere that rebinds its name to 127.0.0.1 cannot read the storage.
    code, _, _ = world["server"].get("/api/classes", headers={"Host": "attacker.example"})
    assert code == 400


def test_beyond_loopback_a_token_is_generated_and_required(world: dict[str, Any]) -> None:
    server = Server(world["root"] / "storage", world["root"], "--host", "0.0.0.0")
    try:
        assert "?token=" in server.url and server.url.startswith("http://0.0.0.0:")
        token = server.url.split("?token=")[1]
        assert len(token) >= 24
        server.base = server.base.replace("0.0.0.0", "127.0.0.1")
        for path in ("/", "/api/classes", f"/api/results/{world['data']}", "/static/app.js"):
            code, _, body = server.get(path)
            assert code == 401 and b"needs its token" in body, path
        assert server.get("/api/classes", headers={"Authorization": "Bearer wrong"})[0] == 401
        assert server.get("/api/classes", headers={"Authorization": f"Bearer {token}"})[0] == 200
        code, headers, _ = server.get(f"/?token={token}")
        assert code == 200 and f"retain_ui_token={token}" in headers["set-cookie"] and "HttpOnly" in headers["set-cookie"]
        assert server.get("/api/classes", headers={"Cookie": f"retain_ui_token={token}"})[0] == 200
    finally:
        server.stop()


def test_a_token_given_is_required_on_loopback_too(world: dict[str, Any]) -> None:
    server = Server(world["root"] / "storage", world["root"], "--token", "s3cret-token")
    try:
        assert server.url.endswith("?token=s3cret-token")
        assert server.get("/api/classes")[0] == 401
        assert server.get("/api/classes?token=s3cret-token")[0] == 200
    finally:
        server.stop()


def test_a_missing_storage_or_a_taken_port_is_an_error(world: dict[str, Any], tmp_path: Path) -> None:
    import subprocess

    from ui_server import CONSOLE

    env = {k: v for k, v in os.environ.items() if not k.startswith("RETAIN_")}
    done = subprocess.run([*CONSOLE, "--storage", str(tmp_path / "none"), "ui"], env=env, capture_output=True, text=True)
    assert done.returncode == 1 and "no storage at" in done.stderr
    port = world["server"].base.rsplit(":", 1)[1].strip("/")
    done = subprocess.run([*CONSOLE, "--storage", str(world["root"] / "storage"), "ui", "--port", port], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in done.stderr
    done = subprocess.run([*CONSOLE, "ui", "--port", "99999"], env=env, capture_output=True, text=True)
    assert done.returncode == 2 and "expected a port number" in done.stderr


def test_live_lists_a_running_component_with_its_output(world: dict[str, Any]) -> None:
    server = world["server"]
    process = start_slow(world["root"], 6.0)
    try:
        running = wait_for(lambda: server.json("/api/live")["running"], what="a running component")
        assert running[0]["class"] == "uiproject:Slow" and running[0]["state"] == "running"
        first = wait_for(lambda: "tick 1" in server.json("/api/live")["running"][0]["output"] and server.json("/api/live")["running"][0]["output"], what="output")
        later = wait_for(lambda: (text := server.json("/api/live")["running"][0]["output"]) != first and text, timeout=2.0, what="more output within 2 s")
        assert len(later) > len(first)
        id = running[0]["id"]
        detail = server.json(f"/api/results/{id}/output")
        assert detail["state"] == "running" and "tick" in detail["text"]
    finally:
        process.terminate()
        process.wait(10)


# -- the queries behind the tables, in process ---------------------------------------------------


def test_a_query_is_answered_from_memory_until_the_storage_changes(
    store: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import retain
    from retain.ui import _data
    from retain.ui._data import Source

    class Seen(retain.Interface):
        Config = {"k": 0}

    retain.get(Seen, {"k": 1}).commit()
    source = Source(store)
    queries: list[Any] = []
    original = Source._query

    def counted(self: Source, ref: Any, where: list[str]) -> Any:
        queries.append((ref, where))
        return original(self, ref, where)

    monkeypatch.setattr(Source, "_query", counted)
    ref = f"{Seen.__module__}:{Seen.__qualname__}"
    assert len(source.collection(ref, [])) == 1
    assert len(source.collection(ref, [], "-k")) == 1
    assert len(source.collection(ref, [])) == 1
    assert len(queries) == 1  # the sorted one is sorted from the rows already there

    retain.get(Seen, {"k": 2}).commit()
    runs, current = source.lookup(ref, [])
    assert current and len(runs) == 2 and len(queries) == 2

    # A query slower than the wait: the rows from before, marked not current, then the new ones.
    def slow(self: Source, ref: Any, where: list[str]) -> Any:
        time.sleep(0.5)
        return original(self, ref, where)

    monkeypatch.setattr(Source, "_query", slow)
    monkeypatch.setattr(_data, "REFRESH_WAIT_S", 0.01)
    retain.get(Seen, {"k": 3}).commit()
    runs, current = source.lookup(ref, [])
    assert not current and len(runs) == 2
    runs = wait_for(lambda: (found := source.lookup(ref, []))[1] and found[0], what="the refreshed rows")
    assert sorted(runs.pluck("k")) == [1, 2, 3]
    page = source.table(ref, [], "-k", 0, 2)
    assert page["current"] and [row["config.k"] for row in page["rows"]] == [3, 2] and page["total"] == 3


def test_requests_on_a_kept_alive_connection_do_not_wait_for_delayed_acks(world: dict[str, Any]) -> None:
    # A response is two writes (head, body): without TCP_NODELAY the second waited for the
    # client's delayed ACK, 40 ms or more on every request after the first of a connection.
    import http.client
    import statistics

    host, port = world["server"].base.split("//")[1].strip("/").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    times = []
    for _ in range(9):
        start = time.perf_counter()
        connection.request("GET", "/api/live")
        response = connection.getresponse()
        assert response.status == 200 and response.read()
        times.append(time.perf_counter() - start)
    connection.close()
    assert statistics.median(times[1:]) < 0.035, times


def test_results_are_filtered_by_their_inputs_own_config(world: dict[str, Any]) -> None:
    server = world["server"]
    rows = "/api/classes/uiproject:Train/rows?filter="
    found = server.json(rows + _q("data.n=5"))
    assert sorted(r["id"] for r in found["rows"]) == sorted(world["trains"])
    assert server.json(rows + _q("data.n>5"))["total"] == 0
    assert [r["config.lr"] for r in server.json(rows + _q("data.n<=5 lr>0.15") + "&sort=lr")["rows"]] == [0.2, 0.3]
    assert server.json(rows + _q("data.n>=5 data.n<6"))["total"] == 3
    error = server.json(rows + _q("data.nope=1"), status=400)["error"]
    assert "unknown config key 'nope' for Data" in error


@pytest.mark.parametrize("missing", ["uvicorn", "starlette", "plotly"])
def test_without_the_ui_extra_the_error_says_what_to_install(store: Any, monkeypatch: pytest.MonkeyPatch, missing: str) -> None:
    import sys

    from retain.ui import serve

    monkeypatch.setitem(sys.modules, missing, None)
    with pytest.raises(ImportError, match=r"pip install 'retain\[ui\]'"):
        serve(store, port=0)


def test_another_loopback_address_is_served_by_its_own_name(world: dict[str, Any]) -> None:
    server = Server(world["root"] / "storage", world["root"], "--host", "127.0.0.2")
    try:
        assert server.url.startswith("http://127.0.0.2:") and "token" not in server.url
        assert server.json("/api/classes")["classes"]
        assert server.get("/api/classes", headers={"Host": "attacker.example"})[0] == 400
    finally:
        server.stop()


def test_last_metric_values_are_columns_to_sort_and_filter_by(world: dict[str, Any]) -> None:
    from retain import Interface

    if not hasattr(Interface, "metrics"):
        pytest.skip("metrics (Component.log_metrics) are not in this version of retain")
    server = world["server"]
    page = server.json("/api/classes/uiproject:Train/rows?sort=metrics.loss")
    assert "metrics.loss" in page["columns"]
    losses = [row["metrics.loss"] for row in page["rows"]]
    assert losses == sorted(losses) and len(losses) == 4
    assert server.json("/api/classes/uiproject:Train/rows?filter=" + _q("metrics.loss<0.1"))["total"] == 2
    series = server.json(f"/api/results/{world['trains'][0]}/series")["metrics"]["loss"]
    assert series["step"] == list(range(40)) and series["value"][0] == 1.0


def test_a_failed_component_shows_its_error(world: dict[str, Any]) -> None:
    data = world["server"].json(f"/api/results/{world['failed']}")
    assert data["state"] == "failed" and data["error"]["type"] == "ValueError" and "boom" in data["error"]["message"]
    assert [e["event"] for e in data["events"]] == ["started", "failed"]


def test_results_whose_code_is_gone_are_shown_from_their_records(tmp_path: Path) -> None:
    import subprocess
    import sys

    project = tmp_path / "gone"
    project.mkdir()
    (project / "vanished.py").write_text(
        "from retain import Interface\n\nclass Kept(Interface):\n    Config = {'a': 1}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETAIN_")}
    code = "import retain, vanished; [retain.get(vanished.Kept, {'a': a}).commit().save_summary(b=a * 2) for a in range(3)]"
    subprocess.run([sys.executable, "-c", code], cwd=project, env={**env, "RETAIN_STORAGE": str(tmp_path / "storage")}, check=True)
    (project / "vanished.py").unlink()
    server = Server(tmp_path / "storage", tmp_path)
    try:
        assert [c["class"] for c in server.json("/api/classes")["classes"]] == ["vanished:Kept"]
        page = server.json("/api/classes/vanished:Kept/rows?sort=-a&filter=" + _q("summary.b>=2"))
        assert [row["config.a"] for row in page["rows"]] == [2, 1]
        detail = server.json(f"/api/results/{page['rows'][0]['id']}")
        assert detail["summary"] == {"b": 4} and detail["command"].startswith("retain vanished:Kept")
    finally:
        server.stop()


def test_rows_sort_by_state_and_by_duration(world: dict[str, Any]) -> None:
    server = world["server"]
    by_state = server.json("/api/classes/uiproject:Train/rows?sort=state")["rows"]
    assert [row["state"] for row in by_state] == ["failed", "finished", "finished", "finished"]
    assert [row["state"] for row in server.json("/api/classes/uiproject:Train/rows?sort=-state")["rows"]][0] == "finished"
    durations = [row["duration"] for row in server.json("/api/classes/uiproject:Train/rows?sort=-duration")["rows"]]
    assert durations == sorted(durations, reverse=True)
    # Interfaces have no runs: no duration, kept in their order after the others.
    assert server.json("/api/classes/uiproject:Point/rows?sort=duration&limit=3")["total"] == 150


def test_a_link_out_of_a_result_is_not_followed(world: dict[str, Any], tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0")
    directory = id_directories(world["root"] / "storage")[world["data"]]
    link = directory / "escape.txt"
    link.symlink_to(secret)
    try:
        server = world["server"]
        listed = [f["name"] for f in server.json(f"/api/results/{world['data']}")["files"]]
        for route in ("files", "preview"):
            code, _, body = server.get(f"/api/results/{world['data']}/{route}/escape.txt")
            assert code in (400, 404) and b"root:x" not in body, (route, listed, code, body)
    finally:
        link.unlink()


def test_metrics_are_shown_without_the_code_of_their_class(tmp_path: Path) -> None:
    import subprocess
    import sys

    project = tmp_path / "gone"
    project.mkdir()
    (project / "logged.py").write_text(
        "from retain import Component\n\nclass Run(Component):\n    Config = {'a': 1}\n\n"
        "    def __call__(self):\n        for step in range(5):\n            self.log_metrics({'loss': 1.0 / (step + 1)}, step=step)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETAIN_")}
    code = "import retain, logged; print(retain.get(logged.Run).launch().id)"
    done = subprocess.run([sys.executable, "-c", code], cwd=project, env={**env, "RETAIN_STORAGE": str(tmp_path / "storage")}, check=True, capture_output=True, text=True)
    id = done.stdout.split()[-1]
    (project / "logged.py").unlink()
    server = Server(tmp_path / "storage", tmp_path)
    try:
        series = server.json(f"/api/results/{id}/series")["metrics"]
        assert series == {"loss": {"step": [0, 1, 2, 3, 4], "value": [1.0, 0.5, pytest.approx(1 / 3), 0.25, 0.2]}}
        assert server.json("/api/classes/logged:Run/rows")["rows"][0]["metrics.loss"] == 0.2
    finally:
        server.stop()
