"""delivery_attempt origin and duration; notification receipts (shown, clicked, closed)

Revision ID: a7c3e9f1b204
Revises: a7c3e91f5d20
Create Date: 2026-12-01 10:00:00

"""
from alembic import op
import sqlalchemy as sa

import webpush_server.database


# revision identifiers, used by Alembic.
revision = 'a7c3e9f1b204'
down_revision = 'a7c3e91f5d20'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('delivery_attempt', schema=None) as batch_op:
        batch_op.add_column(sa.Column('origin', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('duration_ms', sa.Float(), nullable=True))
        batch_op.create_index('ix_delivery_attempt_at', ['at'], unique=False)

    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.add_column(sa.Column('shown_at', webpush_server.database.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('clicked_at', webpush_server.database.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('closed_at', webpush_server.database.UTCDateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.drop_column('closed_at')
        batch_op.drop_column('clicked_at')
        batch_op.drop_column('shown_at')

    with op.batch_alter_table('delivery_attempt', schema=None) as batch_op:
        batch_op.drop_index('ix_delivery_attempt_at')
        batch_op.drop_column('duration_ms')
        batch_op.drop_column('origin')
