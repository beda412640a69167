"""Storage in an object store through fsspec: ``s3://bucket/prefix``, ``gs://``, ``memory://``.

The layout is the plain local one under the URL (``<url>/<id>/interface.json`` and the files
beside it: keys are not sharded, a store has no directory to grow huge). Files are used
through a local cache directory with the same (plain) layout, so that
`local_directory()`, `save_file` and user code work with local paths:

- before commit, files are written to the cache only;
- a commit uploads every file of the interface's cache directory, then writes the record with
  the store's conditional write (S3 ``If-None-Match: *``, GCS ``ifGenerationMatch=0``): the
  record is the last thing written and exactly one committer of an identity wins;
- after commit, `save_file` uploads at once; `load_file` fetches a missing file into the cache.

A commit killed before its record is written leaves files without a record: invisible, like a
directory without a record on local storage, and overwritten by the next commit of the
identity. fsspec and the store's own package (s3fs, gcsfs) are imported when a storage is made.

The modules: `FsspecStorage` (``_storage.py``) holds an `ObjectStore` (``_store.py``: the calls
to the store, each error naming it), makes its fsspec filesystem with ``_filesystems.py``, and
keeps the versions of cached files with ``_cache_versions.py``.
"""

from __future__ import annotations

from ._storage import (
    CONDITIONAL_WRITE_PROTOCOLS,
    URL_OPTIONS,
    FsspecStorage,
    default_cache_dir,
    storage_from_cache,
)

__all__ = ["CONDITIONAL_WRITE_PROTOCOLS", "URL_OPTIONS", "FsspecStorage", "default_cache_dir", "storage_from_cache"]
