"""Names shared across apps."""

# Groups of school staff. Admins change things; viewers only look.
SCHOOL_ADMIN_GROUP = "school-admin"
SCHOOL_VIEWER_GROUP = "school-viewer"
