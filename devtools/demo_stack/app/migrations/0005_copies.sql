-- 1.1.0 (bad build): splits books into copies, but reads a table that does not exist.
CREATE TABLE book_copies (
    id serial PRIMARY KEY,
    book_id integer NOT NULL REFERENCES books (id),
    barcode text NOT NULL UNIQUE
);
INSERT INTO book_copies (book_id, barcode)
    SELECT book_id, barcode FROM legacy_inventory;
