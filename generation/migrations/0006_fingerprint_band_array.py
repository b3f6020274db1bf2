# The fingerprint index moves from one row per (hash, band) to a GIN-indexed array of band
# codes on the hash's own row (16x fewer rows), with a generated bit(256) copy of the hash so
# that Postgres can compute exact Hamming distances (bit_count of XOR) on the candidates.

import django.contrib.postgres.fields
import django.contrib.postgres.indexes
from django.db import migrations, models


def fill_bands(apps, schema_editor):
    from generation.provenance.fingerprint import band_codes

    ClipFingerprint = apps.get_model("generation", "ClipFingerprint")
    for row in ClipFingerprint.objects.only("pk", "hash").iterator():
        ClipFingerprint.objects.filter(pk=row.pk).update(bands=band_codes(bytes(row.hash)))


class Migration(migrations.Migration):
    dependencies = [
        ("generation", "0005_clip_signed_and_watermarked"),
    ]

    operations = [
        migrations.AddField(
            model_name="clipfingerprint",
            name="bands",
            field=django.contrib.postgres.fields.ArrayField(
                base_field=models.IntegerField(), default=list, size=None
            ),
        ),
        migrations.RunPython(fill_bands, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="clipfingerprint",
            index=django.contrib.postgres.indexes.GinIndex(
                fields=["bands"], name="fingerprint_bands_gin"
            ),
        ),
        migrations.RunSQL(
            "ALTER TABLE generation_clipfingerprint ADD COLUMN hash_bits bit(256) "
            "GENERATED ALWAYS AS (('x' || encode(hash, 'hex'))::bit(256)) STORED",
            "ALTER TABLE generation_clipfingerprint DROP COLUMN hash_bits",
        ),
        migrations.RemoveField(model_name="fingerprintband", name="fingerprint"),
        migrations.DeleteModel(name="FingerprintBand"),
    ]
