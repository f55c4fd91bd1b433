-- 1.0.1: books get an optional ISBN.
ALTER TABLE books ADD COLUMN isbn text;
