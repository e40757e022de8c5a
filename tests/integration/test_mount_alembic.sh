#!/usr/bin/env bash
# An Alembic migration (Debian's python3-alembic with SQLAlchemy 1.4) runs
# on a database on the mount; its result is visible from a second mount.
source "$(dirname "$0")/lib.sh"
need_fuse
"$PY" -c "import alembic, sqlalchemy" 2>/dev/null || {
    [ "${CI:-}" = true ] && fail "python3-alembic / python3-sqlalchemy missing"
    echo "skip: no alembic" >&2; exit 77; }
mount_store "$T/m1"
mount_store "$T/m2"
A=$T/alembic
mkdir -p "$A/versions"
cat > "$A/env.py" <<'PY'
from alembic import context
from sqlalchemy import create_engine
url = context.config.get_main_option("sqlalchemy.url")
engine = create_engine(url)
with engine.connect() as conn:
    context.configure(connection=conn, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()
PY
cat > "$A/script.py.mako" <<'PY'
PY
cat > "$A/versions/0001_users.py" <<'PY'
from alembic import op
import sqlalchemy as sa
revision = "0001"
down_revision = None
def upgrade():
    op.create_table("users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(50), nullable=False))
    op.bulk_insert(sa.table("users", sa.column("id"), sa.column("name")),
                   [{"id": i, "name": "user%d" % i} for i in range(1, 101)])
def downgrade():
    op.drop_table("users")
PY
cat > "$A/versions/0002_email.py" <<'PY'
from alembic import op
import sqlalchemy as sa
revision = "0002"
down_revision = "0001"
def upgrade():
    with op.batch_alter_table("users") as b:
        b.add_column(sa.Column("email", sa.String(100)))
        b.create_index("ix_users_name", ["name"])
    op.execute("UPDATE users SET email = name || '@example.com'")
def downgrade():
    with op.batch_alter_table("users") as b:
        b.drop_index("ix_users_name")
        b.drop_column("email")
PY
cat > "$T/alembic.ini" <<EOF2
[alembic]
script_location = $A
sqlalchemy.url = sqlite:///$T/m1/app.db
EOF2
(cd "$T" && timeout 120 "$PY" -m alembic -c "$T/alembic.ini" upgrade head) >"$T/alembic.out" 2>&1 ||
    fail "alembic upgrade: $(tail -5 "$T/alembic.out")"
eq "$(sq "$T/m2/app.db" 'SELECT version_num FROM alembic_version')" 0002 "revision seen from m2"
eq "$(sq "$T/m2/app.db" "SELECT count(*) FROM users WHERE email LIKE '%@example.com'")" 100 "migrated rows on m2"
eq "$(sq "$T/m2/app.db" "SELECT count(*) FROM sqlite_master WHERE name='ix_users_name'")" 1 "index on m2"
eq "$(sq "$T/m2/app.db" 'PRAGMA integrity_check')" ok "integrity on m2"
(cd "$T" && timeout 120 "$PY" -m alembic -c "$T/alembic.ini" downgrade 0001) >>"$T/alembic.out" 2>&1 ||
    fail "alembic downgrade: $(tail -5 "$T/alembic.out")"
eq "$(sq "$T/m2/app.db" 'SELECT version_num FROM alembic_version')" 0001 "downgrade seen from m2"
echo "test_mount_alembic: ok"
