-- 1.0.2: open loans are looked up by student; reservations arrive.
CREATE INDEX loans_open_by_student ON loans (student_id) WHERE returned_at IS NULL;
CREATE TABLE reservations (
    id serial PRIMARY KEY,
    book_id integer NOT NULL REFERENCES books (id),
    student_id integer NOT NULL REFERENCES students (id),
    reserved_at timestamptz NOT NULL DEFAULT now()
);
