"""The parental-controls history is append-only in the database itself: UPDATE and DELETE
raise (as moderation's audit log, moderation migration 0002). TRUNCATE is left to the table
owner; production runs the application under a role that does not own its tables."""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION accounts_parental_event_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'accounts_parentalevent is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER accounts_parental_event_no_change
    BEFORE UPDATE OR DELETE ON accounts_parentalevent
    FOR EACH ROW EXECUTE FUNCTION accounts_parental_event_append_only();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS accounts_parental_event_no_change ON accounts_parentalevent;
DROP FUNCTION IF EXISTS accounts_parental_event_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_parental_controls")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
