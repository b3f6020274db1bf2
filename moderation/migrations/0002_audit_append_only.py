"""The audit log is append-only in the database itself: UPDATE and DELETE raise.

TRUNCATE is left to the table owner (test databases are flushed with it); production runs
the application under a role that does not own its tables."""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION moderation_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'moderation_auditentry is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER moderation_audit_no_change
    BEFORE UPDATE OR DELETE ON moderation_auditentry
    FOR EACH ROW EXECUTE FUNCTION moderation_audit_append_only();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS moderation_audit_no_change ON moderation_auditentry;
DROP FUNCTION IF EXISTS moderation_audit_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("moderation", "0001_initial")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
