"""Glue between retain and the tools researchers already use: `retain.integrations.optuna`
(``pip install 'retain[optuna]'``). Nothing here is imported by `import retain`; each module
imports its tool."""
