-- The workspaces are listed a page at a time by name: the page is a range of this index, not a sort
-- of every workspace.
CREATE INDEX workspaces_by_name ON workspaces(name, id);
