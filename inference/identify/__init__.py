"""Identification of the exact gallery work in a photo, weight-free (issue 8).

RootSIFT local features, a visual vocabulary, a tf-idf inverted file for the shortlist, geometric verification
with MAGSAC, and a threshold calibrated on photos of works outside the gallery. See `identifier.py`.
"""

from inference.identify.calibration import Threshold
from inference.identify.identifier import Identifier, IdentifierBuilder, IdentifyConfig, Match, Prepared, StoredFeatures

__all__ = ["IdentifyConfig", "Identifier", "IdentifierBuilder", "Match", "Prepared", "StoredFeatures", "Threshold"]
