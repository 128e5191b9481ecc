-- The video list pages by keyset, newest first, over every filter it offers: by status, by
-- workspace, or all (aivideos_by_created).
CREATE INDEX aivideos_by_status_created ON aivideos(status, created_at DESC, id DESC);
DROP INDEX aivideos_by_workspace;
CREATE INDEX aivideos_by_workspace ON aivideos(workspace_id, created_at DESC, id DESC);
