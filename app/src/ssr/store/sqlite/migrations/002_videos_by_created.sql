-- The video list (newest first, any status) reads this index instead of sorting the table.
CREATE INDEX aivideos_by_created ON aivideos(created_at DESC, id DESC);
