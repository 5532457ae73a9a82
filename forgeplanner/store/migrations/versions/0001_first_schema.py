"""first schema

Revision ID: 0001_first_schema
Revises: (none: the first schema)
Create Date: 2026-11-26 13:36:44.700693
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_first_schema"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bench_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("runner", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("fingerprint_key", sa.String(length=64), nullable=False),
        sa.Column("fingerprint", sa.JSON(), nullable=False),
        sa.Column("tool_versions", sa.JSON(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("model_ref", sa.String(length=400), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("estimate", sa.JSON(), nullable=True),
        sa.Column("measured", sa.JSON(), nullable=True),
        sa.Column("error_pct", sa.JSON(), nullable=True),
        sa.Column("raw_output", sa.Text(), nullable=True),
        sa.Column("raw_sha256", sa.String(length=64), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("hostname", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bench_runs")),
    )
    with op.batch_alter_table("bench_runs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_bench_runs_fingerprint_key"), ["fingerprint_key"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_bench_runs_runner"), ["runner"], unique=False)
        batch_op.create_index(batch_op.f("ix_bench_runs_started_at"), ["started_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_bench_runs_status"), ["status"], unique=False)

    op.create_table(
        "calibrations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fingerprint_key", sa.String(length=64), nullable=False),
        sa.Column("fingerprint", sa.JSON(), nullable=False),
        sa.Column("runtime", sa.String(length=40), nullable=False),
        sa.Column("bandwidth_bytes_per_s", sa.Float(), nullable=True),
        sa.Column("compute_flops", sa.Float(), nullable=True),
        sa.Column("per_token_s", sa.Float(), nullable=True),
        sa.Column("run_ids", sa.JSON(), nullable=False),
        sa.Column("error_before", sa.JSON(), nullable=False),
        sa.Column("error_after", sa.JSON(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calibrations")),
    )
    with op.batch_alter_table("calibrations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_calibrations_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_calibrations_fingerprint_key"), ["fingerprint_key"], unique=False
        )

    op.create_table(
        "plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plans")),
        sa.UniqueConstraint("name", "version", name="uq_plans_name_version"),
    )
    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_plans_name"), ["name"], unique=False)

    op.create_table(
        "price_observations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("config_id", sa.String(length=120), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("price", sa.Float(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("observed_on", sa.Date(), nullable=False),
        sa.Column("condition", sa.String(length=40), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("dedupe_key", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "config_id IS NOT NULL OR title IS NOT NULL",
            name=op.f("ck_price_observations_config_or_title"),
        ),
        sa.CheckConstraint("price >= 0", name=op.f("ck_price_observations_price_not_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_price_observations")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_price_observations_dedupe_key")),
    )
    with op.batch_alter_table("price_observations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_price_observations_config_id"), ["config_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_price_observations_observed_on"), ["observed_on"], unique=False
        )

    op.create_table(
        "user_machines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("config_id", sa.String(length=120), nullable=True),
        sa.Column("chip_id", sa.String(length=80), nullable=True),
        sa.Column("memory_gb", sa.Integer(), nullable=True),
        sa.Column("fingerprint_key", sa.String(length=64), nullable=True),
        sa.Column("fingerprint", sa.JSON(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_machines")),
        sa.UniqueConstraint("name", name=op.f("uq_user_machines_name")),
    )
    with op.batch_alter_table("user_machines", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_user_machines_config_id"), ["config_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_user_machines_fingerprint_key"), ["fingerprint_key"], unique=False
        )

    op.create_table(
        "user_models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.String(length=200), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("origin", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_models")),
        sa.UniqueConstraint("model_id", name=op.f("uq_user_models_model_id")),
    )
    op.create_table(
        "evidence_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("ref", sa.String(length=80), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=True),
        sa.Column("run_ids", sa.JSON(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("fingerprint_key", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["plans.id"],
            name=op.f("fk_evidence_records_plan_id_plans"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evidence_records")),
    )
    with op.batch_alter_table("evidence_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_evidence_records_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_evidence_records_fingerprint_key"), ["fingerprint_key"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_evidence_records_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_evidence_records_plan_id"), ["plan_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("evidence_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_evidence_records_plan_id"))
        batch_op.drop_index(batch_op.f("ix_evidence_records_kind"))
        batch_op.drop_index(batch_op.f("ix_evidence_records_fingerprint_key"))
        batch_op.drop_index(batch_op.f("ix_evidence_records_created_at"))

    op.drop_table("evidence_records")
    op.drop_table("user_models")
    with op.batch_alter_table("user_machines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_machines_fingerprint_key"))
        batch_op.drop_index(batch_op.f("ix_user_machines_config_id"))

    op.drop_table("user_machines")
    with op.batch_alter_table("price_observations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_price_observations_observed_on"))
        batch_op.drop_index(batch_op.f("ix_price_observations_config_id"))

    op.drop_table("price_observations")
    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_plans_name"))

    op.drop_table("plans")
    with op.batch_alter_table("calibrations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_calibrations_fingerprint_key"))
        batch_op.drop_index(batch_op.f("ix_calibrations_created_at"))

    op.drop_table("calibrations")
    with op.batch_alter_table("bench_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bench_runs_status"))
        batch_op.drop_index(batch_op.f("ix_bench_runs_started_at"))
        batch_op.drop_index(batch_op.f("ix_bench_runs_runner"))
        batch_op.drop_index(batch_op.f("ix_bench_runs_fingerprint_key"))

    op.drop_table("bench_runs")
