"""Create the two school staff groups with their model permissions."""

from django.db import migrations

SCHOOL_ADMIN_GROUP = "school-admin"
SCHOOL_VIEWER_GROUP = "school-viewer"


def create_groups(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Group.objects.get_or_create(name=SCHOOL_ADMIN_GROUP)
    Group.objects.get_or_create(name=SCHOOL_VIEWER_GROUP)


def remove_groups(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Group.objects.filter(name__in=[SCHOOL_ADMIN_GROUP, SCHOOL_VIEWER_GROUP]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
