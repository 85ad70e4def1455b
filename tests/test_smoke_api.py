from tests.support.api_client import ApiClient


async def test_me(api: ApiClient) -> None:
    r = await api.get("/api/users/@me/")
    assert r.status_code == 200, r.text
    assert r.json()["team"]["id"] == api.project_id
