"""Reports: view-models built from the analytics results, rendered as HTML pages and (through
the same templates and server-built SVG charts) as PDF."""
