-- Failed authentications are counted by kind: `failures` stays the total of every kind (the
-- brute-force ban compares it with the limit), and `password_failures` is the part of it that
-- came from wrong passwords. A valid API key forgives the rest (`failures` drops to
-- `password_failures`); nothing but the window's end or a ban forgives wrong passwords.
-- Failures counted before this migration stay in the total, as forgivable key failures.
ALTER TABLE auth_failures ADD COLUMN password_failures INTEGER NOT NULL DEFAULT 0;
