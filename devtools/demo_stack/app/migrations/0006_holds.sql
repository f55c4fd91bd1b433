-- 1.2.0: holds on books (additive: older versions keep working).
CREATE TABLE holds (
    id serial PRIMARY KEY,
    book_id integer NOT NULL REFERENCES books (id),
    student_id integer NOT NULL REFERENCES students (id),
    placed_at timestamptz NOT NULL DEFAULT now()
);
