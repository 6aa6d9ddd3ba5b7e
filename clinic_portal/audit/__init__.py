"""The audit trail: who did what to whom, when, from where. Entries are only ever appended.

``models`` holds the table, ``trail`` the one way to write an entry (:func:`record_audit`) and
the counting the sign-in rate limit is built on. It imports no other domain package: the actor is
anything with an ``id`` and a ``clinic_id``. Searching and exporting the trail is the clinic
admin's page (``clinic_portal/admin``).
"""
