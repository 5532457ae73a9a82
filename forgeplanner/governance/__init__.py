"""The governance gate: policy (a TOML file the user writes) kept apart from enforcement.

`policy` parses and validates the policy into a frozen value; `gate.evaluate` is a pure
function from (plan, policy) to verdicts; enforcement is the caller's: `forgeplanner gate`
turns the verdicts into an exit code a pre-commit hook acts on, and the evidence record
keeps them next to the plan they judged.
"""
