DROP INDEX robots_token_hash;
