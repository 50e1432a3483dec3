"""library v2: loan renewals, hold suspension and not-needed-after, resolved tags

Revision ID: c4e8a2d61f37
Revises: c4e8a2d61f35
Create Date: 2026-12-01 18:10:00.000000

"""
from alembic import op
import sqlalchemy as sa

from webpush_server.database import UTCDateTime


# revision identifiers, used by Alembic.
revision = 'c4e8a2d61f37'
down_revision = 'c4e8a2d61f35'
branch_labels = None
depends_on = None


def upgrade():
    # Plain ADD COLUMN: SQLite needs no table rebuild for nullable or defaulted columns.
    op.add_column('loan', sa.Column('renewals', sa.Integer(), server_default='0', nullable=False))
    op.create_index(
        'ix_loan_active_due',
        'loan',
        ['due_date', 'id'],
        unique=False,
        sqlite_where=sa.text('returned_at IS NULL'),
        postgresql_where=sa.text('returned_at IS NULL'),
    )
    op.add_column('hold', sa.Column('suspended_until', sa.Date(), nullable=True))
    op.add_column('hold', sa.Column('not_needed_after', sa.Date(), nullable=True))
    op.add_column('hold', sa.Column('note', sa.String(length=500), nullable=True))
    op.create_table(
        'resolved_tag',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('tag', sa.String(length=64), nullable=False),
        sa.Column('last_id', sa.Integer(), nullable=False),
        sa.Column('resolved_at', UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ['user_id'], ['user_account.id'],
            name=op.f('fk_resolved_tag_user_id_user_account'), ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_resolved_tag')),
        sa.UniqueConstraint('user_id', 'tag', name='uq_resolved_tag_user_tag'),
    )
    op.create_index(
        'ix_resolved_tag_user_resolved_at', 'resolved_tag', ['user_id', 'resolved_at'], unique=False
    )


def downgrade():
    op.drop_index('ix_resolved_tag_user_resolved_at', table_name='resolved_tag')
    op.drop_table('resolved_tag')
    with op.batch_alter_table('hold') as batch:
        batch.drop_column('note')
        batch.drop_column('not_needed_after')
        batch.drop_column('suspended_until')
    op.drop_index('ix_loan_active_due', table_name='loan')
    with op.batch_alter_table('loan') as batch:
        batch.drop_column('renewals')
