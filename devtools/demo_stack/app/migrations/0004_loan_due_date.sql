-- 1.1.0: loans carry a due date (additive: older versions keep working).
ALTER TABLE loans ADD COLUMN due_on date;
UPDATE loans SET due_on = (loaned_at + interval '14 days')::date;
