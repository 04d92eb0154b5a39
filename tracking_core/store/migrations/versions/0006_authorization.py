"""authorization: principals, grants, roles, audit log

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 14:40:11

Subjects get numeric ids (principals), their own grants (grants), roles with their grants and
members, and the audit log. Nothing existing changes.
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('time_ms', sa.BigInteger(), nullable=False),
    sa.Column('subject', sa.String(length=256).with_variant(mysql.VARCHAR(collation='utf8mb4_bin', length=256), 'mariadb').with_variant(mysql.VARCHAR(collation='utf8mb4_bin', length=256), 'mysql'), nullable=True),
    sa.Column('auth_method', sa.String(length=32), nullable=True),
    sa.Column('client', sa.String(length=64), nullable=True),
    sa.Column('action', sa.String(length=128), nullable=False),
    sa.Column('resource_type', sa.String(length=32), nullable=True),
    sa.Column('resource_id', sa.String(length=256), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('status', sa.Integer(), nullable=False),
    sa.Column('detail', sa.String(length=1000), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log')),
    mysql_charset='utf8mb4',
    mysql_engine='InnoDB'
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index('ix_audit_log_subject_time', ['subject', 'time_ms'], unique=False)
        batch_op.create_index('ix_audit_log_time', ['time_ms'], unique=False)

    op.create_table('principals',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('subject', sa.String(length=256).with_variant(mysql.VARCHAR(collation='utf8mb4_bin', length=256), 'mariadb').with_variant(mysql.VARCHAR(collation='utf8mb4_bin', length=256), 'mysql'), nullable=False),
    sa.Column('created_time', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_principals')),
    sa.UniqueConstraint('subject', name=op.f('uq_principals_subject')),
    mysql_charset='utf8mb4',
    mysql_engine='InnoDB'
    )
    op.create_table('roles',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('workspace', sa.String(length=63).with_variant(mysql.VARCHAR(collation='utf8mb4_bin', length=63), 'mariadb').with_variant(mysql.VARCHAR(collation='utf8mb4_bin', length=63), 'mysql'), nullable=False),
    sa.Column('name', sa.String(length=256).with_variant(mysql.VARCHAR(collation='utf8mb4_bin', length=256), 'mariadb').with_variant(mysql.VARCHAR(collation='utf8mb4_bin', length=256), 'mysql'), nullable=False),
    sa.Column('description', sa.String(length=1000), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_roles')),
    sa.UniqueConstraint('workspace', 'name', name=op.f('uq_roles_workspace_name')),
    mysql_charset='utf8mb4',
    mysql_engine='InnoDB'
    )
    op.create_table('grants',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('principal_id', sa.Integer(), nullable=False),
    sa.Column('resource_type', sa.String(length=32), nullable=False),
    sa.Column('resource_id', sa.String(length=256).with_variant(mysql.VARCHAR(collation='utf8mb4_bin', length=256), 'mariadb').with_variant(mysql.VARCHAR(collation='utf8mb4_bin', length=256), 'mysql'), nullable=False),
    sa.Column('permission', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['principal_id'], ['principals.id'], name=op.f('fk_grants_principal_id_principals'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_grants')),
    sa.UniqueConstraint('principal_id', 'resource_type', 'resource_id', name=op.f('uq_grants_principal_id_resource_type_resource_id')),
    mysql_charset='utf8mb4',
    mysql_engine='InnoDB'
    )
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.create_index('ix_grants_resource', ['resource_type', 'resource_id'], unique=False)

    op.create_table('role_assignments',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('principal_id', sa.Integer(), nullable=False),
    sa.Column('role_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['principal_id'], ['principals.id'], name=op.f('fk_role_assignments_principal_id_principals'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['role_id'], ['roles.id'], name=op.f('fk_role_assignments_role_id_roles'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_role_assignments')),
    sa.UniqueConstraint('principal_id', 'role_id', name=op.f('uq_role_assignments_principal_id_role_id')),
    mysql_charset='utf8mb4',
    mysql_engine='InnoDB'
    )
    with op.batch_alter_table('role_assignments', schema=None) as batch_op:
        batch_op.create_index('ix_role_assignments_role', ['role_id'], unique=False)

    op.create_table('role_permissions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('role_id', sa.Integer(), nullable=False),
    sa.Column('resource_type', sa.String(length=32), nullable=False),
    sa.Column('resource_pattern', sa.String(length=256).with_variant(mysql.VARCHAR(collation='utf8mb4_bin', length=256), 'mariadb').with_variant(mysql.VARCHAR(collation='utf8mb4_bin', length=256), 'mysql'), nullable=False),
    sa.Column('permission', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['role_id'], ['roles.id'], name=op.f('fk_role_permissions_role_id_roles'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_role_permissions')),
    sa.UniqueConstraint('role_id', 'resource_type', 'resource_pattern', name=op.f('uq_role_permissions_role_id_resource_type_resource_pattern')),
    mysql_charset='utf8mb4',
    mysql_engine='InnoDB'
    )
    with op.batch_alter_table('role_permissions', schema=None) as batch_op:
        batch_op.create_index('ix_role_permissions_resource', ['resource_type', 'resource_pattern'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('role_permissions', schema=None) as batch_op:
        batch_op.drop_index('ix_role_permissions_resource')

    op.drop_table('role_permissions')
    with op.batch_alter_table('role_assignments', schema=None) as batch_op:
        batch_op.drop_index('ix_role_assignments_role')

    op.drop_table('role_assignments')
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.drop_index('ix_grants_resource')

    op.drop_table('grants')
    op.drop_table('roles')
    op.drop_table('principals')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_log_time')
        batch_op.drop_index('ix_audit_log_subject_time')

    op.drop_table('audit_log')
