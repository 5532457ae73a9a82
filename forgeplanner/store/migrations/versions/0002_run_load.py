"""the machine's load during each benchmark run

Revision ID: 0002_run_load
Revises: 0001_first_schema
Create Date: 2026-12-07 12:00:00

Two columns on bench_runs, filled from the run's `measured["load"]` block
(forgeplanner.measurement.load) so runs can be listed and filtered by their load without reading
the JSON: `load_verdict` (quiet | noisy | accepted | not judged; NULL for runs stored before
load sampling, whose load is unknown) and `other_cpu_share` (the other processes' share of
the machine's CPU time during the run). Runs of an older database keep NULL: nothing was
sampled then, and the upgrade must not invent it (rows that already carry a load block, from a
development build, are backfilled from it).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_run_load"
down_revision = "0001_first_schema"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bench_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("load_verdict", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("other_cpu_share", sa.Float(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_bench_runs_load_verdict"), ["load_verdict"], unique=False
        )
    # backfill from the JSON block where one exists (the verdict rule of
    # forgeplanner.measurement.load.verdict_of, restated here: a migration must not import app code
    # that may change after it is written)
    runs = sa.table(
        "bench_runs",
        sa.column("id", sa.Integer),
        sa.column("measured", sa.JSON),
        sa.column("load_verdict", sa.String),
        sa.column("other_cpu_share", sa.Float),
    )
    conn = op.get_bind()
    for run_id, measured in conn.execute(sa.select(runs.c.id, runs.c.measured)).all():
        load = (measured or {}).get("load") if isinstance(measured, dict) else None
        if not isinstance(load, dict):
            continue
        if not load.get("judged", True):
            verdict = "not judged"
        elif not load.get("noisy"):
            verdict = "quiet"
        else:
            verdict = "accepted" if load.get("accepted") else "noisy"
        share = load.get("other_cpu_share")
        conn.execute(
            runs.update()
            .where(runs.c.id == run_id)
            .values(
                load_verdict=verdict,
                other_cpu_share=float(share) if isinstance(share, (int, float)) else None,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("bench_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bench_runs_load_verdict"))
        batch_op.drop_column("other_cpu_share")
        batch_op.drop_column("load_verdict")
