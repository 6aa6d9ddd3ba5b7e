"""patient accounts and sharing: share requests, sign-in codes, reset links, clinic settings

Revision ID: 3d528851fbc8
Revises: e4585ffdd730
Create Date: 2026-11-21 07:52:04.499187+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "3d528851fbc8"
down_revision: str | None = "e4585ffdd730"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "password_reset_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("used_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("password_reset_token", schema=None) as batch_op:
        batch_op.create_index("ix_password_reset_token_user", ["user_id"], unique=False)

    op.create_table(
        "verification_code",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("used_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("verification_code", schema=None) as batch_op:
        batch_op.create_index("ix_verification_code_user", ["user_id"], unique=False)

    op.create_table(
        "share_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("invite_email", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=True),
        sa.Column("via", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("sent_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("accepted_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("declined_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("revoked_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("cancelled_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("consent_text", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["user_account.id"],
        ),
        sa.ForeignKeyConstraint(
            ["clinic_id"],
            ["clinic.id"],
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["user_account.id"],
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patient.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("share_request", schema=None) as batch_op:
        batch_op.create_index("ix_share_request_account", ["account_id"], unique=False)
        batch_op.create_index("ix_share_request_clinic_state", ["clinic_id", "state"], unique=False)
        batch_op.create_index("ix_share_request_invite_email", ["invite_email"], unique=False)
        batch_op.create_index("ix_share_request_patient", ["patient_id", "id"], unique=False)

    with op.batch_alter_table("clinic", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("staff_two_factor", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("share_code", sqlmodel.sql.sqltypes.AutoString(length=14), nullable=True)
        )
        batch_op.add_column(
            sa.Column(
                "share_terms",
                sa.Text(),
                server_default="I allow this clinic's care team to see the diabetes device data, reports and uploads in my account for my treatment. I can stop sharing at any time in my account; the clinic then loses access to my data at once. Every view and export of my data is recorded.",
                nullable=False,
            )
        )
        batch_op.create_unique_constraint("uq_clinic_share_code", ["share_code"])

    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("username", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True)
        )
        batch_op.add_column(
            sa.Column("email_verified_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )
        batch_op.add_column(
            sa.Column("two_factor", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.create_unique_constraint("uq_user_account_username", ["username"])


def downgrade() -> None:
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.drop_constraint("uq_user_account_username", type_="unique")
        batch_op.drop_column("two_factor")
        batch_op.drop_column("email_verified_at")
        batch_op.drop_column("username")

    with op.batch_alter_table("clinic", schema=None) as batch_op:
        batch_op.drop_constraint("uq_clinic_share_code", type_="unique")
        batch_op.drop_column("share_terms")
        batch_op.drop_column("share_code")
        batch_op.drop_column("staff_two_factor")

    with op.batch_alter_table("share_request", schema=None) as batch_op:
        batch_op.drop_index("ix_share_request_patient")
        batch_op.drop_index("ix_share_request_invite_email")
        batch_op.drop_index("ix_share_request_clinic_state")
        batch_op.drop_index("ix_share_request_account")

    op.drop_table("share_request")
    with op.batch_alter_table("verification_code", schema=None) as batch_op:
        batch_op.drop_index("ix_verification_code_user")

    op.drop_table("verification_code")
    with op.batch_alter_table("password_reset_token", schema=None) as batch_op:
        batch_op.drop_index("ix_password_reset_token_user")

    op.drop_table("password_reset_token")
