"""delivery: dead status, reclaim count

Revision ID: 2031b1c4a72e
Revises: 4c432c085c86
Create Date: 2026-12-01 15:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '2031b1c4a72e'
down_revision = '4c432c085c86'
branch_labels = None
depends_on = None

OLD_STATUSES = "status IN ('pending', 'sending', 'sent', 'failed', 'gone', 'expired', 'skipped')"
NEW_STATUSES = "status IN ('pending', 'sending', 'sent', 'failed', 'gone', 'expired', 'skipped', 'dead')"


def sqlite_foreign_keys(on):
    """Switch SQLite's foreign key enforcement (the app turns it on for every connection).

    Batch mode changes a CHECK constraint on SQLite by copying the table and dropping the old
    one; with enforcement on, that DROP would cascade and empty delivery_attempt. The pragma
    only takes effect outside a transaction.
    """
    if op.get_bind().dialect.name == 'sqlite':
        with op.get_context().autocommit_block():
            op.execute('PRAGMA foreign_keys=%s' % ('ON' if on else 'OFF'))


def upgrade():
    sqlite_foreign_keys(False)
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reclaims', sa.Integer(), server_default='0', nullable=False))
        batch_op.drop_constraint(batch_op.f('ck_delivery_status'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_delivery_status'), NEW_STATUSES)
    sqlite_foreign_keys(True)


def downgrade():
    # The old schema has no dead state: those deliveries read as failed.
    op.execute("UPDATE delivery SET status = 'failed' WHERE status = 'dead'")
    sqlite_foreign_keys(False)
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_delivery_status'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_delivery_status'), OLD_STATUSES)
        batch_op.drop_column('reclaims')
    sqlite_foreign_keys(True)
