from django.db import migrations

# Safety: consent ledger rows can be inserted, never changed or deleted, whatever code (or
# person with a database shell under the application's role) tries. TRUNCATE is left to the
# operator: it is not something the application issues.
FORBID = """
CREATE OR REPLACE FUNCTION cameo_ledger_forbid_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'consent ledger entries are append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER cameo_ledger_append_only
    BEFORE UPDATE OR DELETE ON cameo_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION cameo_ledger_forbid_change();
"""

ALLOW = """
DROP TRIGGER IF EXISTS cameo_ledger_append_only ON cameo_ledgerentry;
DROP FUNCTION IF EXISTS cameo_ledger_forbid_change();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("cameo", "0001_initial"),
    ]

    operations = [migrations.RunSQL(FORBID, ALLOW)]
