"""`devkit db.pull ENV`: a masked copy of a server's database on the laptop (docs/ARCHITECTURE.md,
"Pull"). rules.py reads the app's rule file, masks.py turns each rule into the SQL the server's
COPY computes, source.py runs on the server (the kit's own backup, masked), remote.py reaches
the server as provision does, and run.py lands the copy like db.restore."""
