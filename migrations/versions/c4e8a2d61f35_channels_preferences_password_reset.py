"""channels: e-mail and SMS delivery rows, notification preferences, password resets

Revision ID: c4e8a2d61f35
Revises: 7d3e5a91c0b4
Create Date: 2026-12-01 18:10:00.000000

"""
from alembic import op
import sqlalchemy as sa

from webpush_server.database import UTCDateTime


# revision identifiers, used by Alembic.
revision = 'c4e8a2d61f35'
down_revision = '7d3e5a91c0b4'
branch_labels = None
depends_on = None


def sqlite_foreign_keys(on):
    """Switch SQLite's foreign key enforcement off around batch copies (see 2031b1c4a72e)."""
    if op.get_bind().dialect.name == 'sqlite':
        with op.get_context().autocommit_block():
            op.execute('PRAGMA foreign_keys=%s' % ('ON' if on else 'OFF'))


def upgrade():
    op.create_table(
        'notification_preference',
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('language', sa.String(length=16), nullable=False),
        sa.Column('timezone', sa.String(length=64), nullable=True),
        sa.Column('quiet_start', sa.String(length=5), nullable=True),
        sa.Column('quiet_end', sa.String(length=5), nullable=True),
        sa.Column('digest_hour', sa.Integer(), nullable=False),
        sa.Column('kinds', sa.JSON(), nullable=False),
        sa.Column('email_bounces', sa.Integer(), server_default='0', nullable=False),
        sa.Column('email_bouncing_at', UTCDateTime(), nullable=True),
        sa.Column('phone_number', sa.String(length=16), nullable=True),
        sa.Column('phone_verified_at', UTCDateTime(), nullable=True),
        sa.Column('phone_invalid_at', UTCDateTime(), nullable=True),
        sa.Column('phone_code_hash', sa.String(length=64), nullable=True),
        sa.Column('phone_code_sent_at', UTCDateTime(), nullable=True),
        sa.Column('phone_code_tries', sa.Integer(), server_default='0', nullable=False),
        sa.CheckConstraint('digest_hour BETWEEN 0 AND 23', name=op.f('ck_notification_preference_digest_hour')),
        sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_notification_preference_user_id_user_account'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('user_id', name=op.f('pk_notification_preference')),
    )
    op.create_table(
        'password_reset',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('expires_at', UTCDateTime(), nullable=False),
        sa.Column('used_at', UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_password_reset_user_id_user_account'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_password_reset')),
    )
    op.create_index(op.f('ix_password_reset_user_id'), 'password_reset', ['user_id'], unique=False)
    sqlite_foreign_keys(False)
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.add_column(sa.Column('channel', sa.String(length=8), server_default='push', nullable=False))
        batch_op.add_column(sa.Column('address', sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column('fallback', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.create_unique_constraint(batch_op.f('uq_delivery_address'), ['notification_id', 'channel', 'address'])
        batch_op.create_check_constraint(batch_op.f('ck_delivery_channel'), "channel IN ('push', 'email', 'sms')")
    sqlite_foreign_keys(True)


def downgrade():
    sqlite_foreign_keys(False)
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_delivery_channel'), type_='check')
        batch_op.drop_constraint(batch_op.f('uq_delivery_address'), type_='unique')
        batch_op.drop_column('fallback')
        batch_op.drop_column('address')
        batch_op.drop_column('channel')
    sqlite_foreign_keys(True)
    op.drop_index(op.f('ix_password_reset_user_id'), table_name='password_reset')
    op.drop_table('password_reset')
    op.drop_table('notification_preference')
