-- 1.0.0: the library schema.
CREATE TABLE books (
    id serial PRIMARY KEY,
    title text NOT NULL,
    author text NOT NULL
);
CREATE TABLE students (
    id serial PRIMARY KEY,
    name text NOT NULL,
    grade integer NOT NULL
);
CREATE TABLE loans (
    id serial PRIMARY KEY,
    book_id integer NOT NULL REFERENCES books (id),
    student_id integer NOT NULL REFERENCES students (id),
    loaned_at timestamptz NOT NULL DEFAULT now(),
    returned_at timestamptz
);
