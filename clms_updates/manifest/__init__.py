"""The signed release format both roles share: one format, one place.

The vendor server builds manifests and indexes with these types and signs their
canonical bytes; the school agent parses, verifies and checks them with the same
code, whatever the source (vendor server, LAN mirror, offline bundle). The two
roles never import each other: they meet only here and over HTTP.

- ``schema``: the manifest and index types, canonical JSON, SemVer, parsing.
- ``signing``: detached GPG signatures and verification against pinned keys.
- ``freshness``: the replay (sequence) and freeze (expiry) rules.
- ``roles``: the root document, its roles and thresholds, key rotation.
- ``rollout``: which schools a staged release has reached (both sides).
"""

from clms_updates.manifest.freshness import (
    EquivocationError,
    ExpiredError,
    ReplayError,
    check_index_freshness,
    check_not_equivocating,
    check_offline_manifest_fresh,
)
from clms_updates.manifest.roles import (
    Role,
    RootDocument,
    check_next_root,
    implicit_root,
    join_signatures,
    parse_root,
    role_signers,
    split_signatures,
    verify_threshold,
)
from clms_updates.manifest.rollout import (
    rollout_bucket,
    school_token,
    visible_part,
)
from clms_updates.manifest.schema import (
    COMPOSE_FORMAT,
    FORMAT_VERSION,
    BaseImage,
    Bundle,
    HealthCheck,
    Image,
    IndexEntry,
    ManifestError,
    Migration,
    ReleaseIndex,
    ReleaseManifest,
    SourceBuild,
    canonical_json,
    parse_index,
    parse_manifest,
    parse_version,
    sha256_hex,
)
from clms_updates.manifest.signing import (
    SignatureError,
    import_public_keys,
    sign_detached,
    verify_detached,
)

__all__ = [
    "COMPOSE_FORMAT",
    "FORMAT_VERSION",
    "BaseImage",
    "Bundle",
    "EquivocationError",
    "ExpiredError",
    "HealthCheck",
    "Image",
    "IndexEntry",
    "ManifestError",
    "Migration",
    "ReleaseIndex",
    "ReleaseManifest",
    "ReplayError",
    "Role",
    "RootDocument",
    "SignatureError",
    "SourceBuild",
    "canonical_json",
    "check_index_freshness",
    "check_next_root",
    "check_not_equivocating",
    "check_offline_manifest_fresh",
    "implicit_root",
    "import_public_keys",
    "join_signatures",
    "parse_index",
    "parse_manifest",
    "parse_root",
    "parse_version",
    "role_signers",
    "rollout_bucket",
    "school_token",
    "sha256_hex",
    "sign_detached",
    "split_signatures",
    "verify_detached",
    "verify_threshold",
    "visible_part",
]
