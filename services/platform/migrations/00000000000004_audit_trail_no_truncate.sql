-- TRUNCATE fires no row trigger, so the trail's UPDATE and DELETE trigger let it empty the trail whole; a
-- statement trigger refuses it. The head is only ever moved forward by an append: deleting or truncating
-- it is refused as well.
CREATE TRIGGER audit_trail_no_truncate BEFORE TRUNCATE ON audit_trail
    FOR EACH STATEMENT EXECUTE FUNCTION audit_trail_append_only();
CREATE TRIGGER audit_head_kept BEFORE DELETE OR TRUNCATE ON audit_head
    FOR EACH STATEMENT EXECUTE FUNCTION audit_trail_append_only();
