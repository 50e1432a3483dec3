"""delivery: drop ix_delivery_notification_id, which uq_delivery_target already covers

The unique (notification_id, subscription_id) index serves every lookup by notification_id;
the second index only cost each delivery INSERT another b-tree write.

Revision ID: e1a7d0c93b52
Revises: c4e8a2d61f37
Create Date: 2026-12-02 02:30:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'e1a7d0c93b52'
down_revision = 'c4e8a2d61f37'
branch_labels = None
depends_on = None


def upgrade():
    op.drop_index('ix_delivery_notification_id', table_name='delivery')


def downgrade():
    op.create_index('ix_delivery_notification_id', 'delivery', ['notification_id'], unique=False)
