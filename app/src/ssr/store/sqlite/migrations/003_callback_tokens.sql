-- Capability callback URLs: the SHA-256 (hex) of the token in the URLs of the batch that last sent
-- the video to RCK. NULL for videos created before tokens, which are accepted as before.
ALTER TABLE aivideos ADD COLUMN callback_token_hash TEXT;
