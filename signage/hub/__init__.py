"""Hub layer: the source-system side: publisher tools now, the reference hub next."""
