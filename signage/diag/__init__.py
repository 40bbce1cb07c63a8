"""Diagnostics for the technician in front of a board: the report and its verdict
(:mod:`signage.diag.report`), the pages in Vietnamese with test patterns and a font test
(:mod:`signage.diag.pages`), and the interactive screen and overlay (:mod:`signage.diag.kiosk`)."""
