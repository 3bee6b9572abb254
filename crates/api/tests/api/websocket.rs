//! WebSocket: both protocols deliver subscriptions and refuse bad tokens.

use super::*;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn ws_connect(url: &str, protocol: &str, authorization: Option<&str>) -> Result<Ws, u16> {
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
    if let Some(a) = authorization {
        req.headers_mut()
            .insert("Authorization", a.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("WebSocket connect failed: {e}"),
    }
}

async fn ws_send(ws: &mut Ws, msg: Value) {
    ws.send(Message::Text(msg.to_string().into()))
        .await
        .unwrap();
}

/// The next JSON message, or `None` when the server closed the connection (with its reason).
async fn ws_next(ws: &mut Ws) -> Result<Value, String> {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("no WebSocket message within 5 s");
        match msg {
            Some(Ok(Message::Text(t))) => return Ok(serde_json::from_str(&t).unwrap()),
            Some(Ok(Message::Close(frame))) => {
                return Err(frame
                    .map(|f| format!("{} {}", f.code, f.reason))
                    .unwrap_or_default());
            }
            None => return Err(String::new()),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.to_string()),
        }
    }
}

#[tokio::test]
async fn graphql_transport_ws_delivers_subscription_items() {
    let s = start().await;
    let mut ws = ws_connect(&s.ws, "graphql-transport-ws", None)
        .await
        .unwrap();
    ws_send(
        &mut ws,
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {}", s.tokens.land.as_str())}}),
    )
    .await;
    assert_eq!(ws_next(&mut ws).await.unwrap()["type"], "connection_ack");
    ws_send(
        &mut ws,
        json!({"id": "1", "type": "subscribe", "payload": {"query": "subscription { ticks(n: 3) }"}}),
    )
    .await;
    for i in 0..3 {
        let msg = ws_next(&mut ws).await.unwrap();
        assert_eq!(msg["type"], "next", "{msg}");
        assert_eq!(msg["payload"]["data"]["ticks"], i);
    }
    assert_eq!(ws_next(&mut ws).await.unwrap()["type"], "complete");

    // Queries work over the socket too, with the connection's context.
    ws_send(
        &mut ws,
        json!({"id": "2", "type": "subscribe", "payload": {"query": "{ whoami }"}}),
    )
    .await;
    let msg = ws_next(&mut ws).await.unwrap();
    assert!(
        msg["payload"]["data"]["whoami"]
            .as_str()
            .unwrap()
            .starts_with("land-registry"),
        "{msg}"
    );
}

#[tokio::test]
async fn legacy_graphql_ws_delivers_subscription_items() {
    let s = start().await;
    // Token on the upgrade request this time.
    let auth = format!("Bearer {}", s.tokens.steward.as_str());
    let mut ws = ws_connect(&s.ws, "graphql-ws", Some(&auth)).await.unwrap();
    ws_send(&mut ws, json!({"type": "connection_init", "payload": {}})).await;
    assert_eq!(ws_next(&mut ws).await.unwrap()["type"], "connection_ack");
    ws_send(
        &mut ws,
        json!({"id": "1", "type": "start", "payload": {"query": "subscription { ticks(n: 2) }"}}),
    )
    .await;
    for i in 0..2 {
        let msg = ws_next(&mut ws).await.unwrap();
        assert_eq!(msg["type"], "data", "{msg}");
        assert_eq!(msg["payload"]["data"]["ticks"], i);
    }
    assert_eq!(ws_next(&mut ws).await.unwrap()["type"], "complete");
}

#[tokio::test]
async fn websockets_reject_bad_tokens() {
    let s = start().await;
    let wrong = format!("Bearer {}", Token::generate().unwrap().as_str());

    // graphql-transport-ws: the server closes the connection.
    let mut ws = ws_connect(&s.ws, "graphql-transport-ws", None)
        .await
        .unwrap();
    ws_send(
        &mut ws,
        json!({"type": "connection_init", "payload": {"Authorization": wrong}}),
    )
    .await;
    let closed = ws_next(&mut ws).await.unwrap_err();
    assert!(closed.contains("invalid bearer token"), "{closed}");

    // No token at all.
    let mut ws = ws_connect(&s.ws, "graphql-transport-ws", None)
        .await
        .unwrap();
    ws_send(&mut ws, json!({"type": "connection_init"})).await;
    let closed = ws_next(&mut ws).await.unwrap_err();
    assert!(closed.contains("missing bearer token"), "{closed}");

    // Legacy graphql-ws: connection_error.
    let mut ws = ws_connect(&s.ws, "graphql-ws", None).await.unwrap();
    ws_send(
        &mut ws,
        json!({"type": "connection_init", "payload": {"authorization": wrong}}),
    )
    .await;
    let msg = ws_next(&mut ws).await.unwrap();
    assert_eq!(msg["type"], "connection_error", "{msg}");

    // A bad token on the upgrade request itself is refused with 401 before upgrading.
    assert_eq!(
        ws_connect(&s.ws, "graphql-transport-ws", Some(&wrong))
            .await
            .err(),
        Some(401)
    );
}
