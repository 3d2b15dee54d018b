-- Robots authenticate by token alone (X-Api-Token), so the token hash is looked up, and no two
-- robots may share one.
CREATE UNIQUE INDEX robots_token_hash ON robots (token_hash);
