"""The item catalogue (adapters/catalogue): public reads, guarded writes, and every bad input refused with 400."""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import pytest
from kit_platform import FakeProvider

from adapters.catalogue import create_app, load_demo_items, seed
from adapters.catalogue.payloads import InvalidInput

CLIENT_ID = "catalogue"
FOOD = "01001530000000010000"  # 食品经营许可 (demo data)
SOCIAL_CARD = "11000980000000040000"  # 社会保障卡申领 (demo data, public service)
NEW = "01000010000000990000"


def new_item(code: str = NEW, **change: Any) -> dict[str, Any]:
    item = {
        "code": code,
        "name": "药品零售企业许可",
        "kind": "administrative_power",
        "subtype": "licensing",
        "department": "药品监督管理部门",
        "acceptance_conditions": "具有依法经过资格认定的药学技术人员。",
        "materials": [
            {"name": "申请书", "required": True},
            {"name": "营业执照", "required": True, "licence_type": "business_licence"},
        ],
        "steps": [{"name": "受理"}, {"name": "审查", "description": "现场检查"}, {"name": "决定"}],
        "statutory_limit_days": 15,
        "committed_limit_days": 10,
        "fees": "free",
    }
    item.update(change)
    return item


@pytest.fixture
def app(tmp_path: Path, fake_provider: FakeProvider) -> Any:
    app = create_app(
        {
            "TESTING": True,
            "CATALOGUE_DATABASE_URL": f"sqlite:///{tmp_path / 'catalogue.sqlite3'}",
            "CATALOGUE_ISSUER": fake_provider.url,
            "CATALOGUE_CLIENT_ID": CLIENT_ID,
            "CATALOGUE_CLIENT_SECRET": "catalogue-secret-0123456789-0123456789",
        }
    )
    seed(app, load_demo_items())
    return app


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


@pytest.fixture
def token(fake_provider: FakeProvider) -> Any:
    """An RFC 9068 access token for the catalogue, signed by the fake provider."""

    def make(scope: str = "catalogue:write", **claims: Any) -> dict[str, str]:
        now = int(time.time())
        body = {
            "iss": fake_provider.url,
            "aud": CLIENT_ID,
            "sub": "catalogue-admin-1",
            "client_id": "catalogue-admin-console",
            "scope": scope,
            "iat": now,
            "exp": now + 300,
            "jti": f"t-{now}",
            **claims,
        }
        return {"Authorization": f"Bearer {fake_provider.sign(body, typ='at+jwt')}"}

    return make


@pytest.fixture
def writer(token: Any) -> dict[str, str]:
    return dict(token())


# -- public reads ----------------------------------------------------------------------------------


def test_anyone_lists_and_searches_active_items(client: Any) -> None:
    listing = client.get("/api/items").get_json()
    assert listing["total"] == 4 and listing["offset"] == 0 and listing["limit"] == 20
    assert [item["code"] for item in listing["items"]] == sorted(item["code"] for item in listing["items"])
    assert {i["code"] for i in client.get("/api/items?q=食品").get_json()["items"]} == {FOOD}
    assert {i["code"] for i in client.get("/api/items?q=0100153").get_json()["items"]} == {
        FOOD,
        "01001530000000020000",
    }
    by_department = client.get("/api/items", query_string={"q": "人力资源"}).get_json()
    assert [i["code"] for i in by_department["items"]] == [SOCIAL_CARD]
    services = client.get("/api/items?kind=public_service").get_json()
    assert [i["code"] for i in services["items"]] == [SOCIAL_CARD] and services["items"][0]["subtype"] is None
    assert client.get("/api/items?q=100%25").get_json()["total"] == 0  # % is matched literally
    assert client.get("/api/items?q=_").get_json()["total"] == 0


def test_an_item_reads_with_its_materials_and_regional_implementations(client: Any) -> None:
    item = client.get(f"/api/items/{FOOD}").get_json()
    assert item["name"] == "食品经营许可" and item["subtype"] == "licensing"
    licence = next(m for m in item["materials"] if m["name"] == "营业执照")
    assert licence == {**licence, "required": True, "licence_type": "business_licence"}
    assert item["fees"] == "free" and item["status"] == "active" and item["version"] == 1
    assert [row["region_code"] for row in item["implementations"]] == ["110105", "420106"]
    rows = client.get(f"/api/items/{FOOD}/implementations").get_json()["implementations"]
    assert rows == item["implementations"] and all(row["code"] == FOOD for row in rows)
    fee = client.get("/api/items/07001290000000030000").get_json()["fees"][0]
    assert fee["amount_yuan"] == "80.00"


def test_pagination_walks_every_item_once(app: Any, client: Any) -> None:
    seed(app, {"items": [new_item(f"0100001000000099{n:04d}") for n in range(23)]})
    seen: list[str] = []
    for offset in range(0, 40, 10):
        page = client.get(f"/api/items?offset={offset}&limit=10").get_json()
        assert page["total"] == 27 and page["offset"] == offset
        seen += [item["code"] for item in page["items"]]
    assert len(seen) == 27 == len(set(seen)) and seen == sorted(seen)
    assert client.get("/api/items?offset=100").get_json()["items"] == []


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=101",
        "limit=abc",
        "offset=-1",
        "offset=1e3",
        "offset=９",
        "kind=licensing",
        "status=x",
        "q=" + "事" * 101,
        "q=%00",
    ],
)
def test_bad_search_parameters_are_400(client: Any, query: str) -> None:
    response = client.get(f"/api/items?{query}")
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request" and response.get_json()["field"]


def test_unknown_and_malformed_codes(client: Any) -> None:
    unknown = "99999999999999999999"
    for path in (f"/api/items/{unknown}", f"/api/items/{unknown}/implementations"):
        response = client.get(path)
        assert response.status_code == 404 and response.get_json()["error"] == "not_found"
    for bad in (
        "0100153000000001000",
        "01001530000000010000X",
        "01001530000000010a00",
        "00000000000000000000",
    ):
        response = client.get(f"/api/items/{bad}")
        assert response.status_code == 400 and response.get_json()["field"] == "code"
    assert client.get("/api/nothing").get_json()["error"] == "not_found"
    assert client.delete(f"/api/items/{FOOD}").status_code == 405


# -- who may write ---------------------------------------------------------------------------------


def test_writes_need_a_token_with_catalogue_write(
    client: Any, token: Any, fake_provider: FakeProvider
) -> None:
    writes = [
        ("post", "/api/items", new_item()),
        ("put", f"/api/items/{FOOD}", new_item(FOOD)),
        ("post", f"/api/items/{FOOD}/withdraw", {}),
        ("post", f"/api/items/{FOOD}/implementations", {"region_code": "320102"}),
    ]
    for method, path, body in writes:
        missing = getattr(client, method)(path, json=body)
        assert missing.status_code == 401 and missing.headers["WWW-Authenticate"].startswith("Bearer")
        forged = getattr(client, method)(path, json=body, headers={"Authorization": "Bearer a.b.c"})
        assert forged.status_code == 401 and forged.get_json()["error"] == "invalid_token"
        elsewhere = getattr(client, method)(path, json=body, headers=token(aud="case-service"))
        assert elsewhere.status_code == 401 and "audience" in elsewhere.get_json()["error_description"]
        weak = getattr(client, method)(path, json=body, headers=token(scope="openid profile catalogue:read"))
        assert weak.status_code == 403 and weak.get_json()["error"] == "insufficient_scope"
        assert 'scope="catalogue:write"' in weak.headers["WWW-Authenticate"]
    assert client.get(f"/api/items/{FOOD}").get_json()["version"] == 1  # nothing changed


def test_a_service_account_writes_with_an_opaque_token(client: Any, fake_provider: FakeProvider) -> None:
    fake_provider.introspection["opaque-service-token"] = {
        "active": True,
        "iss": fake_provider.url,
        "aud": CLIENT_ID,
        "client_id": "catalogue-sync",
        "sub": "catalogue-sync",
        "scope": "catalogue:write",
        "exp": int(time.time()) + 300,
    }
    response = client.post(
        "/api/items", json=new_item(), headers={"Authorization": "Bearer opaque-service-token"}
    )
    assert response.status_code == 201
    revoked = client.post(
        "/api/items", json=new_item("01000010000000990001"), headers={"Authorization": "Bearer revoked"}
    )
    assert revoked.status_code == 401


# -- create, update, withdraw ----------------------------------------------------------------------


def test_create_then_read(client: Any, writer: dict[str, str]) -> None:
    response = client.post(
        "/api/items", json=new_item(fees=[{"name": "工本费", "amount_yuan": 5}]), headers=writer
    )
    assert response.status_code == 201 and response.headers["Location"].endswith(f"/api/items/{NEW}")
    created = response.get_json()
    assert created["version"] == 1 and created["implementations"] == []
    assert created["materials"][0] == {"name": "申请书", "required": True, "licence_type": None, "notes": ""}
    assert created["fees"] == [{"name": "工本费", "amount_yuan": "5.00", "basis": ""}]
    assert client.get(f"/api/items/{NEW}").get_json() == created
    again = client.post("/api/items", json=new_item(), headers=writer)
    assert again.status_code == 409 and again.get_json()["error"] == "conflict"


def test_update_replaces_the_description_and_keeps_code_and_regions(
    client: Any, writer: dict[str, str]
) -> None:
    changed = new_item(FOOD, name="食品经营许可（含仅销售预包装食品备案）", committed_limit_days=8)
    changed.pop("code")
    response = client.put(f"/api/items/{FOOD}", json={**changed, "version": 1}, headers=writer)
    assert response.status_code == 200, response.get_json()
    item = response.get_json()
    assert (
        item["name"].startswith("食品经营许可（")
        and item["version"] == 2
        and item["committed_limit_days"] == 8
    )
    assert len(item["implementations"]) == 2
    stale = client.put(f"/api/items/{FOOD}", json={**changed, "version": 1}, headers=writer)
    assert stale.status_code == 409 and "version 2" in stale.get_json()["error_description"]
    renamed = client.put(f"/api/items/{FOOD}", json=new_item("01001530000000010001"), headers=writer)
    assert renamed.status_code == 400 and renamed.get_json()["field"] == "code"
    unknown = client.put(f"/api/items/{NEW}", json=new_item(), headers=writer)
    assert unknown.status_code == 404
    # Regions commit to 7 and 5 days: the statutory limit cannot drop below what they promised.
    below = client.put(
        f"/api/items/{FOOD}",
        json=new_item(FOOD, statutory_limit_days=6, committed_limit_days=6),
        headers=writer,
    )
    assert below.status_code == 409 and "110105" in below.get_json()["error_description"]


def test_withdraw_hides_the_item_from_default_search(client: Any, writer: dict[str, str]) -> None:
    response = client.post(
        f"/api/items/{SOCIAL_CARD}/withdraw", json={"reason": "并入“社会保障卡服务”"}, headers=writer
    )
    assert response.status_code == 200
    assert response.get_json()["status"] == "withdrawn" and response.get_json()["version"] == 2
    assert client.get("/api/items").get_json()["total"] == 3
    assert client.get("/api/items?status=withdrawn").get_json()["items"][0]["code"] == SOCIAL_CARD
    assert client.get("/api/items?status=all").get_json()["total"] == 4
    assert client.get(f"/api/items/{SOCIAL_CARD}").get_json()["withdrawal_reason"] == "并入“社会保障卡服务”"
    assert client.post(f"/api/items/{SOCIAL_CARD}/withdraw", headers=writer).status_code == 409
    assert (
        client.put(f"/api/items/{SOCIAL_CARD}", json=new_item(SOCIAL_CARD), headers=writer).status_code == 409
    )
    late = client.post(
        f"/api/items/{SOCIAL_CARD}/implementations",
        json={
            "region_code": "110105",
            "department": "北京市朝阳区人力资源和社会保障局",
            "committed_limit_days": 5,
        },
        headers=writer,
    )
    assert late.status_code == 409
    assert client.post(f"/api/items/{NEW}/withdraw", headers=writer).status_code == 404
    page = client.get(f"/items/{SOCIAL_CARD}").get_data(as_text=True)
    assert "本事项已取消" in page


# -- regional implementations ----------------------------------------------------------------------


def implementation(**change: Any) -> dict[str, Any]:
    return {
        "region_code": "320102",
        "department": "南京市玄武区市场监督管理局",
        "committed_limit_days": 5,
        **change,
    }


def test_a_region_implements_a_national_item(client: Any, writer: dict[str, str]) -> None:
    response = client.post(
        f"/api/items/{FOOD}/implementations", json=implementation(notes="窗口：一楼"), headers=writer
    )
    assert response.status_code == 201
    assert response.get_json() == {
        **response.get_json(),
        "code": FOOD,
        "region_code": "320102",
        "notes": "窗口：一楼",
    }
    rows = client.get(f"/api/items/{FOOD}/implementations").get_json()["implementations"]
    assert [row["region_code"] for row in rows] == ["110105", "320102", "420106"]
    twice = client.post(f"/api/items/{FOOD}/implementations", json=implementation(), headers=writer)
    assert twice.status_code == 409
    # The statutory limit (20) is the ceiling, even above the national committed limit (10).
    assert (
        client.post(
            f"/api/items/{FOOD}/implementations",
            json=implementation(region_code="320104", committed_limit_days=20),
            headers=writer,
        ).status_code
        == 201
    )


def test_a_region_cannot_promise_more_than_the_statutory_limit(client: Any, writer: dict[str, str]) -> None:
    response = client.post(
        f"/api/items/{FOOD}/implementations", json=implementation(committed_limit_days=21), headers=writer
    )
    assert response.status_code == 400
    body = response.get_json()
    assert body["field"] == "committed_limit_days" and "statutory limit (20)" in body["error_description"]


def test_a_region_cannot_implement_an_unknown_code_or_redefine_one(
    client: Any, writer: dict[str, str]
) -> None:
    unknown = client.post(f"/api/items/{NEW}/implementations", json=implementation(), headers=writer)
    assert unknown.status_code == 404 and unknown.get_json()["error"] == "not_found"
    for body in (implementation(code=NEW), implementation(national_code=FOOD)):
        response = client.post(f"/api/items/{FOOD}/implementations", json=body, headers=writer)
        assert response.status_code == 400 and "never redefines" in response.get_json()["error_description"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"region_code": "32010"}, "region_code"),
        ({"region_code": "990102"}, "region_code"),  # no such province
        ({"region_code": 320102}, "region_code"),
        ({"committed_limit_days": -1}, "committed_limit_days"),
        ({"committed_limit_days": "5"}, "committed_limit_days"),
        ({"department": ""}, "department"),
        ({"department": "局" * 201}, "department"),
        ({"notes": ["x"]}, "notes"),
        ({"extra": 1}, "extra"),
    ],
)
def test_bad_implementations_are_400(
    client: Any, writer: dict[str, str], change: dict[str, Any], field: str
) -> None:
    response = client.post(
        f"/api/items/{FOOD}/implementations", json=implementation(**change), headers=writer
    )
    assert response.status_code == 400 and response.get_json()["field"] == field


# -- every bad item is a 400 with a reason ---------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"code": "0100001000000099000"}, "code"),  # 19 characters
        ({"code": "0100001000000099000a"}, "code"),  # lower case
        ({"code": "01000010 00000099000"}, "code"),
        ({"code": "00000000000000000000"}, "code"),
        ({"code": 1000010000000990000}, "code"),
        ({"name": 42}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "许" * 201}, "name"),
        ({"name": "a\u0000b"}, "name"),
        ({"acceptance_conditions": "条" * 20_000}, "acceptance_conditions"),
        ({"kind": "service"}, "kind"),
        ({"kind": None}, "kind"),
        ({"subtype": "permit"}, "subtype"),
        ({"subtype": None}, "subtype"),
        ({"kind": "public_service", "subtype": "licensing"}, "subtype"),
        ({"department": {"name": "x"}}, "department"),
        ({"statutory_limit_days": "20"}, "statutory_limit_days"),
        ({"statutory_limit_days": 20.5}, "statutory_limit_days"),
        ({"statutory_limit_days": True}, "statutory_limit_days"),
        ({"statutory_limit_days": 10**12}, "statutory_limit_days"),
        ({"committed_limit_days": 16}, "committed_limit_days"),  # above the statutory 15
        ({"committed_limit_days": -2}, "committed_limit_days"),
        ({"materials": "申请书"}, "materials"),
        ({"materials": ["申请书"]}, "materials[0]"),
        ({"materials": [{"name": "申请书"}]}, "materials[0].required"),
        ({"materials": [{"name": "申请书", "required": "yes"}]}, "materials[0].required"),
        (
            {"materials": [{"name": "证", "required": True, "licence_type": "Business Licence"}]},
            "materials[0].licence_type",
        ),
        ({"materials": [{"name": "证", "required": True}] * 2}, "materials[1].name"),
        ({"materials": [{"name": "证", "required": True, "size": 1}]}, "materials[0]"),
        ({"materials": [{"name": f"材料{n}", "required": True} for n in range(101)]}, "materials"),
        ({"steps": []}, "steps"),
        ({"steps": [{"description": "x"}]}, "steps[0].name"),
        ({"fees": "none"}, "fees"),
        ({"fees": [{"name": "费", "amount_yuan": -1}]}, "fees[0].amount_yuan"),
        ({"fees": [{"name": "费", "amount_yuan": "1.005"}]}, "fees[0].amount_yuan"),
        ({"fees": [{"name": "费", "amount_yuan": "NaN"}]}, "fees[0].amount_yuan"),
        ({"fees": [{"name": "费", "amount_yuan": True}]}, "fees[0].amount_yuan"),
        ({"fees": [{"name": "费", "amount_yuan": "1e400"}]}, "fees[0].amount_yuan"),
        ({"status": "withdrawn"}, "status"),
        ({"version": 3}, "version"),  # only PUT reads a version
    ],
)
def test_bad_items_are_400(client: Any, writer: dict[str, str], change: dict[str, Any], field: str) -> None:
    response = client.post("/api/items", json=new_item(**change), headers=writer)
    assert response.status_code == 400, response.get_data(as_text=True)
    body = response.get_json()
    assert body["error"] == "invalid_request" and body["field"] == field and body["error_description"]
    assert client.get(f"/api/items/{NEW}").status_code == 404


@pytest.mark.parametrize(
    "field", ["name", "kind", "department", "steps", "materials", "statutory_limit_days", "fees"]
)
def test_missing_fields_are_400(client: Any, writer: dict[str, str], field: str) -> None:
    body = new_item()
    del body[field]
    response = client.post("/api/items", json=body, headers=writer)
    assert response.status_code == 400 and response.get_json()["field"] == field


@pytest.mark.parametrize(
    "raw",
    [b"", b"not json", b"\xff\xfe{}", b"[1, 2]", b'"text"', b'{"code": NaN}', b"{" * 50_000, b"[" * 100_000],
)
def test_non_json_bodies_are_400(client: Any, writer: dict[str, str], raw: bytes) -> None:
    for path in ("/api/items", f"/api/items/{FOOD}/implementations"):
        response = client.post(path, data=raw, headers={**writer, "Content-Type": "application/json"})
        assert response.status_code == 400 and response.get_json()["error"] == "invalid_request"
    assert client.put(f"/api/items/{FOOD}", data=raw, headers=writer).status_code == 400


def test_oversized_bodies_are_refused_as_json(client: Any, writer: dict[str, str]) -> None:
    response = client.post("/api/items", json=new_item(name="许" * 300_000), headers=writer)
    assert response.status_code == 413 and response.get_json()["error"] == "request_too_large"


def test_withdraw_reason_is_checked(client: Any, writer: dict[str, str]) -> None:
    for body in ({"reason": 5}, {"reason": "因" * 501}, {"why": "x"}):
        assert client.post(f"/api/items/{FOOD}/withdraw", json=body, headers=writer).status_code == 400
    assert client.get(f"/api/items/{FOOD}").get_json()["status"] == "active"


def test_put_version_must_be_a_positive_integer(client: Any, writer: dict[str, str]) -> None:
    for version in ("1", 0, True, 1.0):
        response = client.put(
            f"/api/items/{FOOD}", json={**new_item(FOOD), "version": version}, headers=writer
        )
        assert response.status_code == 400 and response.get_json()["field"] == "version"


# -- pages -----------------------------------------------------------------------------------------


def test_the_search_page_renders_and_paginates(app: Any, client: Any) -> None:
    page = client.get("/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert "政务服务事项目录" in html and "食品经营许可" in html and "共 4 项" in html
    assert "<script" not in html and 'lang="zh-CN"' in html
    found = client.get("/", query_string={"q": "社会保障", "kind": "public_service"}).get_data(as_text=True)
    assert "社会保障卡申领" in found and "食品经营许可" not in found
    seed(app, {"items": [new_item(f"0100001000000099{n:04d}") for n in range(12)]})
    first = client.get("/").get_data(as_text=True)
    assert "第 1 / 2 页" in first and "下一页" in first and "上一页" not in first
    second = client.get("/?page=2").get_data(as_text=True)
    assert "上一页" in second and "下一页" not in second
    for bad in ("0", "x", "-1", "9999999"):
        assert client.get(f"/?page={bad}").status_code == 400
    assert client.get("/?kind=nonsense").status_code == 400


def test_the_item_page_shows_the_guide(client: Any) -> None:
    page = client.get(f"/items/{FOOD}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    for text in (
        "受理条件",
        "申请材料",
        "办理流程",
        "各地实施情况",
        "北京市朝阳区市场监督管理局",
        "business_licence",
        "不收费",
    ):
        assert text in html
    assert "电子证照共享获取" in html
    fees = client.get("/items/07001290000000030000").get_data(as_text=True)
    assert "80.00 元" in fees


def test_missing_pages_are_404_html(client: Any) -> None:
    for path in (f"/items/{NEW}", "/items/not-a-code", "/nowhere"):
        response = client.get(path)
        assert response.status_code == 404 and response.mimetype == "text/html"
        assert "未找到" in response.get_data(as_text=True)


def test_pages_escape_what_admins_wrote(client: Any, writer: dict[str, str]) -> None:
    client.post("/api/items", json=new_item(name="<script>alert(1)</script>"), headers=writer)
    html = client.get(f"/items/{NEW}").get_data(as_text=True) + client.get("/").get_data(as_text=True)
    assert "<script>" not in html and "&lt;script&gt;" in html


# -- seeding -----------------------------------------------------------------------------------------


def test_seed_is_idempotent_and_checks_its_data(app: Any) -> None:
    assert seed(app, load_demo_items()) == 0
    broken = copy.deepcopy(load_demo_items())
    broken["items"][0].update(code="01001530000000019999", committed_limit_days=99)
    with pytest.raises(InvalidInput, match="committed_limit_days"):
        seed(app, broken)


def test_the_demo_items_show_both_kinds_and_an_e_certificate(app: Any) -> None:
    items = load_demo_items()["items"]
    assert 3 <= len(items) <= 5
    assert {item["kind"] for item in items} == {"administrative_power", "public_service"}
    food = next(item for item in items if item["code"] == FOOD)
    assert any(m.get("licence_type") == "business_licence" for m in food["materials"])
