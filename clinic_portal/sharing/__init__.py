"""Sharing: a clinic asks to see a patient account's data (or the patient enters the clinic's
share code), the patient accepts, declines or stops sharing, and every data page of the clinic
opens or closes with it.

One home for the domain: ``models`` (share requests), ``services`` (the rules and the one data
access check), ``forms``, ``views`` (the clinic's sharing page of a patient, the patient's own
share pages, invitation links) and ``receivers`` (reactions to account events announced by
``clinic_portal.auth`` through ``clinic_portal.signals``). docs/sharing.md describes the rules.
"""
