"""users (basic auth) and issued tokens (revocation by jti)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 01:20:00
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def _name(length: int) -> sa.types.TypeEngine:
    return sa.String(length=length).with_variant(mysql.VARCHAR(collation='utf8mb4_bin', length=length), 'mariadb').with_variant(mysql.VARCHAR(collation='utf8mb4_bin', length=length), 'mysql')


def upgrade() -> None:
    op.create_table(
        'users',
        sa.Column('name', _name(256), nullable=False),
        sa.Column('password_hash', sa.String(length=512), nullable=False),
        sa.Column('is_admin', sa.Boolean(), nullable=False),
        sa.Column('created_time', sa.BigInteger(), nullable=False),
        sa.Column('password_changed_time', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_users')),
        mysql_charset='utf8mb4',
        mysql_engine='InnoDB',
    )
    op.create_table(
        'auth_tokens',
        sa.Column('jti', sa.String(length=64), nullable=False),
        sa.Column('subject', _name(256), nullable=False),
        sa.Column('issued_time', sa.BigInteger(), nullable=False),
        sa.Column('expires_time', sa.BigInteger(), nullable=True),
        sa.Column('revoked_time', sa.BigInteger(), nullable=True),
        sa.Column('description', sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint('jti', name=op.f('pk_auth_tokens')),
        mysql_charset='utf8mb4',
        mysql_engine='InnoDB',
    )
    op.create_index(op.f('ix_auth_tokens_revoked_time'), 'auth_tokens', ['revoked_time'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_auth_tokens_revoked_time'), table_name='auth_tokens')
    op.drop_table('auth_tokens')
    op.drop_table('users')
