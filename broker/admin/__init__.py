"""The access administration app at /admin: provider requests, IT approval, reviews.

Staff log in through the broker's own login as the built-in client `admin.client_id`;
`rules.py` decides from their assignment what they may do, `service.py` carries changes out
(shared with `broker authz requests|reviews`), `web.py` serves the pages.
"""
