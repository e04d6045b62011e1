/**
 * fetch with a connection of its own for every request. A pooled fetch reuses sockets, and
 * llama-server closes idle keep-alive connections: the next request on such a socket fails with
 * "other side closed", which a probe would read as the candidate's service failing. A fresh
 * connection also keeps one probe request from carrying state into the next.
 */
import { Agent, fetch as undiciFetch, type RequestInit as UndiciRequestInit } from 'undici';

const noKeepAlive = new Agent({ pipelining: 0 });

export function freshFetch(url: string, init: Omit<UndiciRequestInit, 'dispatcher'> = {}): Promise<Response> {
  return undiciFetch(url, { ...init, dispatcher: noKeepAlive }) as unknown as Promise<Response>;
}
