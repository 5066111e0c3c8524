"""Artifacts: the files trainings leave (policy.zip, vecnormalize.pkl, result.json, reward.py, video.mp4, tb/, and
what later engines add), kept in one store that every host reaches: a directory under the data dir by default, any
S3-compatible bucket in production. The database holds keys, never host paths (``keys``)."""
