/** `GET /v2/`: the API version check (distribution-spec end-1). */
import { json, type RegistryResponse } from '../http.js';

export async function checkApiVersion(): Promise<RegistryResponse> {
  return json(200, {});
}
