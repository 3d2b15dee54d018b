ALTER TABLE auth_failures DROP COLUMN password_failures;
