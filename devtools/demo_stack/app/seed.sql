-- Sample data for the demo library (only into empty tables).
INSERT INTO books (title, author)
SELECT title, author FROM (VALUES
    ('The Hobbit', 'J. R. R. Tolkien'),
    ('Matilda', 'Roald Dahl'),
    ('Charlotte''s Web', 'E. B. White'),
    ('Wonder', 'R. J. Palacio'),
    ('Holes', 'Louis Sachar'),
    ('The Giver', 'Lois Lowry')
) AS v (title, author)
WHERE NOT EXISTS (SELECT 1 FROM books);
INSERT INTO students (name, grade)
SELECT name, grade FROM (VALUES
    ('Ada Moreau', 5), ('Ben Okafor', 6), ('Chloe Lin', 4), ('Dev Patel', 6)
) AS v (name, grade)
WHERE NOT EXISTS (SELECT 1 FROM students);
INSERT INTO loans (book_id, student_id)
SELECT b.id, s.id FROM books b JOIN students s ON s.id = b.id
WHERE NOT EXISTS (SELECT 1 FROM loans);
