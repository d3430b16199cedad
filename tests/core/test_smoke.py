def test_full_code_flow(broker_server):
    rp = broker_server.rp()
    with broker_server.browser() as browser:
        code = rp.login(browser)
    resp = rp.token(code)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    claims = rp.verify(body["id_token"])
    assert claims["sub"] == "u-anna"
    assert claims["nonce"] == rp.last["nonce"]
