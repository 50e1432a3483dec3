"""jobs: job instances and executions (Spring Batch semantics)

Revision ID: b7c1e5a9d3f2
Revises: a7c3e9f1b204
Create Date: 2026-12-08 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa

from webpush_server.database import UTCDateTime


# revision identifiers, used by Alembic.
revision = 'b7c1e5a9d3f2'
down_revision = 'a7c3e9f1b204'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'job_instance',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('params_key', sa.String(length=400), nullable=False),
        sa.Column('at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_job_instance')),
        sa.UniqueConstraint('name', 'params_key', name='uq_job_instance_name_params'),
    )
    op.create_table(
        'job_execution',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('instance_id', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('started_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('ended_at', UTCDateTime(timezone=True), nullable=True),
        sa.Column('heartbeat', UTCDateTime(timezone=True), nullable=False),
        sa.Column('owner', sa.String(length=200), nullable=False),
        sa.Column('read', sa.Integer(), nullable=False),
        sa.Column('written', sa.Integer(), nullable=False),
        sa.Column('skipped', sa.Integer(), nullable=False),
        sa.Column('position', sa.Text(), nullable=True),
        sa.Column('counts', sa.Text(), nullable=True),
        sa.Column('skips', sa.Text(), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('late', sa.Boolean(), nullable=False),
        sa.CheckConstraint(
            "status IN ('started', 'completed', 'failed')", name=op.f('ck_job_execution_status')
        ),
        sa.ForeignKeyConstraint(
            ['instance_id'], ['job_instance.id'],
            name=op.f('fk_job_execution_instance_id_job_instance'), ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_job_execution')),
    )
    op.create_index(
        'ix_job_execution_instance_id_id', 'job_execution', ['instance_id', 'id'], unique=False
    )


def downgrade():
    op.drop_index('ix_job_execution_instance_id_id', table_name='job_execution')
    op.drop_table('job_execution')
    op.drop_table('job_instance')
