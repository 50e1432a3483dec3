"""service API: keys, requests, scheduled and cancelled notifications

Revision ID: 7d3e5a91c0b4
Revises: b7c1e5a9d3f2
Create Date: 2026-12-01 16:00:00.000000

"""
from alembic import op
import sqlalchemy as sa

from webpush_server.database import UTCDateTime


# revision identifiers, used by Alembic.
revision = '7d3e5a91c0b4'
down_revision = 'b7c1e5a9d3f2'
branch_labels = None
depends_on = None

OLD_STATUSES = "status IN ('pending', 'sending', 'sent', 'failed', 'gone', 'expired', 'skipped', 'dead')"
NEW_STATUSES = "status IN ('pending', 'sending', 'sent', 'failed', 'gone', 'expired', 'skipped', 'dead', 'cancelled')"


def sqlite_foreign_keys(on):
    """Switch SQLite's foreign key enforcement off around batch copies (see 2031b1c4a72e).

    Batch mode rebuilds notification and delivery by copy-and-drop; with enforcement on, the
    DROP would cascade into delivery and delivery_attempt.
    """
    if op.get_bind().dialect.name == 'sqlite':
        with op.get_context().autocommit_block():
            op.execute('PRAGMA foreign_keys=%s' % ('ON' if on else 'OFF'))


def upgrade():
    op.create_table(
        'api_key',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=120), nullable=False),
        sa.Column('site', sa.String(length=10), nullable=False),
        sa.Column('key_hash', sa.String(length=64), nullable=False),
        sa.Column('prefix', sa.String(length=16), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('last_used_at', UTCDateTime(), nullable=True),
        sa.Column('revoked_at', UTCDateTime(), nullable=True),
        sa.CheckConstraint("site IN ('library', 'funding', 'all')", name=op.f('ck_api_key_site')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_api_key')),
        sa.UniqueConstraint('key_hash', name=op.f('uq_api_key_key_hash')),
    )
    op.create_table(
        'api_request',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('api_key_id', sa.Integer(), nullable=False),
        sa.Column('idempotency_key', sa.String(length=255), nullable=True),
        sa.Column('body_hash', sa.String(length=64), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('send_at', UTCDateTime(), nullable=True),
        sa.Column('cancellation_key', sa.String(length=200), nullable=True),
        sa.Column('response', sa.Text(), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "status IN ('queued', 'scheduled', 'cancelled')", name=op.f('ck_api_request_status')
        ),
        sa.ForeignKeyConstraint(
            ['api_key_id'], ['api_key.id'],
            name=op.f('fk_api_request_api_key_id_api_key'), ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_api_request')),
        sa.UniqueConstraint('api_key_id', 'idempotency_key', name='uq_api_request_idempotency'),
    )
    op.create_index(
        'ix_api_request_cancellation', 'api_request', ['api_key_id', 'cancellation_key']
    )
    op.create_index('ix_api_request_status_send_at', 'api_request', ['status', 'send_at'])
    op.create_table(
        'api_request_notification',
        sa.Column('notification_id', sa.Integer(), nullable=False),
        sa.Column('api_request_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ['api_request_id'], ['api_request.id'],
            name=op.f('fk_api_request_notification_api_request_id_api_request'),
            ondelete='CASCADE',
        ),
        sa.ForeignKeyConstraint(
            ['notification_id'], ['notification.id'],
            name=op.f('fk_api_request_notification_notification_id_notification'),
            ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('notification_id', name=op.f('pk_api_request_notification')),
    )
    op.create_index(
        op.f('ix_api_request_notification_api_request_id'),
        'api_request_notification',
        ['api_request_id'],
    )

    sqlite_foreign_keys(False)
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.add_column(sa.Column('visible_at', UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('data', sa.JSON(), nullable=True))
    # Everything recorded so far was in the inbox from the moment it was recorded.
    op.execute('UPDATE notification SET visible_at = created_at')
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_delivery_status'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_delivery_status'), NEW_STATUSES)
    sqlite_foreign_keys(True)


def downgrade():
    # The old schema has no cancelled state and no schedule: cancelled deliveries read as
    # skipped, withdrawn notifications are deleted, scheduled ones show at once.
    op.execute("UPDATE delivery SET status = 'skipped' WHERE status = 'cancelled'")
    op.execute('DELETE FROM notification WHERE visible_at IS NULL')
    sqlite_foreign_keys(False)
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_delivery_status'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_delivery_status'), OLD_STATUSES)
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.drop_column('data')
        batch_op.drop_column('visible_at')
    sqlite_foreign_keys(True)
    op.drop_index(
        op.f('ix_api_request_notification_api_request_id'), table_name='api_request_notification'
    )
    op.drop_table('api_request_notification')
    op.drop_index('ix_api_request_status_send_at', table_name='api_request')
    op.drop_index('ix_api_request_cancellation', table_name='api_request')
    op.drop_table('api_request')
    op.drop_table('api_key')
