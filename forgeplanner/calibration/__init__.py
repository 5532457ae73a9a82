"""Published Apple Silicon LLM runs: the sourced dataset the speed model is fitted on.

`runs_dataset` rebuilds `data/published_runs.csv` from the per-source input tables in
`data/sources/` and the curated lookups in `data/lookups/`; docs/published-runs.md says what
the dataset holds and how it was built.
"""
